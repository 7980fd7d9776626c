#!/usr/bin/env python3
"""Null syslog sink for bench/*.sh: accept TCP connections, read and discard.

Usage: null_sink.py HOST PORT STATUS_FILE

Every accepted connection gets a thread that reads 256 KiB at a time and
counts bytes and newlines (loggen's RFC 5424 frames, "LEN MSG\\n", carry
exactly one newline each, so newlines == messages). The totals are written
to STATUS_FILE as "messages bytes connections first last" about every
50 ms (atomic rename) so the driver can poll them, where first and last are
the Unix times (s, float; 0 before any data) of the first and the latest
read that returned data (last as of the latest publication); the process exits on SIGTERM/SIGINT
after a final write. It does no parsing, so it measures what the loopback
socket and the sender can do, not what a receiver can do.
"""

import os
import signal
import socket
import sys
import threading
import time

CHUNK = 256 * 1024


class Totals:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages = 0
        self.bytes = 0
        self.connections = 0
        self.first = 0.0
        self.last = 0.0


def serve_conn(conn: socket.socket, totals: Totals) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    msgs = 0
    nbytes = 0
    first = last = 0.0

    def publish():
        with totals.lock:
            totals.messages += msgs
            totals.bytes += nbytes
            if first and (not totals.first or first < totals.first):
                totals.first = first
            totals.last = max(totals.last, last)

    try:
        while True:
            n = conn.recv_into(view)
            if n <= 0:
                break
            last = time.time()
            if not first:
                first = last
                publish()  # the first arrival is told at once
            nbytes += n
            msgs += buf.count(b"\n", 0, n)
            # Publish at most every ~1 MiB to keep the lock off the hot path.
            if nbytes >= 1 << 20:
                publish()
                msgs = nbytes = 0
    except OSError:
        pass
    finally:
        publish()
        conn.close()


def write_status(path: str, totals: Totals) -> None:
    with totals.lock:
        line = (f"{totals.messages} {totals.bytes} {totals.connections} "
                f"{totals.first:.6f} {totals.last:.6f}\n")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(line)
    os.replace(tmp, path)


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, status = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    totals = Totals()

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(128)

    stop = threading.Event()

    def on_signal(_sig, _frm):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def acceptor():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            with totals.lock:
                totals.connections += 1
            threading.Thread(target=serve_conn, args=(conn, totals), daemon=True).start()

    threading.Thread(target=acceptor, daemon=True).start()
    write_status(status, totals)
    print(f"null-sink listening on {host}:{port}", flush=True)
    while not stop.wait(0.05):
        write_status(status, totals)
    write_status(status, totals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
