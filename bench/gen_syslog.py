#!/usr/bin/env python3
"""Syslog load generator for bench/log.sh: many sources, pre-built bytes.

Usage: gen_syslog.py HOST PORT --count N [--sources S] [--connections C]
                     [--size BYTES] [--prefix NAME] [--quiet]

Sends N RFC 5424 messages in octet-counted framing ("LEN MSG", no LF) over
C TCP connections (default 2) to HOST:PORT, as fast as the receiver takes
them, then closes and exits. The APP-NAME of message i cycles through S ids
(PREFIX000000 … PREFIX{S-1}; --sources 1 sends everything as PREFIX000000),
so one run can hold 100,000 distinct sources; the ids have a fixed width,
so every frame has the same length whatever S is and a 1-source and a
100,000-source run send the same bytes per message.

Each MSG (everything after "LEN ") is exactly --size bytes (default 256,
as loggen's --size): "<134>1 - bench-host APP 4242 - - " then a payload
padded with 'x'. TIMESTAMP is the NILVALUE, so the receiver stamps each
message with its arrival time (a pre-built stream cannot carry the time).

To send fast from Python the whole stream is built once: a block of
max(S, 10000) frames (rounded up to a multiple of S), ~27 MiB for 100,000
sources, which every connection sends over and over with sendall on a
memoryview (the kernel copies; Python does nothing per message). Connection
k starts k/C of the way into the block, so the connections interleave
sources. This pushes well over 1 M msg/s into a null sink on loopback.

Prints "start=µs-since-epoch" to stdout once the stream is built, just
before it connects, and "sent=N seconds=T rate=R/s" when done.
Exit status 1 if a connection failed (the line then gives what was sent).
"""

import argparse
import socket
import sys
import threading
import time

HOST_FIELD = "bench-host"
PROC_ID = "4242"
ID_WIDTH = 6


def build_block(sources: int, size: int, prefix: str, min_frames: int = 10000):
    """Returns (bytes, frame_length, frames_in_block)."""
    frames = max(sources, min_frames)
    frames = -(-frames // sources) * sources  # a whole number of cycles
    head_len = len(f"<134>1 - {HOST_FIELD} {prefix}{0:0{ID_WIDTH}d} {PROC_ID} - - ")
    tail = "seq "
    pad = size - head_len - len(tail) - 10
    if pad < 0:
        raise SystemExit(f"--size {size} is too small (at least {head_len + len(tail) + 10})")
    width = len(str(size))
    out = bytearray()
    for i in range(frames):
        app = f"{prefix}{i % sources:0{ID_WIDTH}d}"
        msg = f"<134>1 - {HOST_FIELD} {app} {PROC_ID} - - {tail}{i:010d}{'x' * pad}"
        # Fixed width for the length too: every frame is the same size.
        out += f"{len(msg):0{width}d} {msg}".encode()
    frame_len = len(out) // frames
    assert frame_len * frames == len(out)
    return bytes(out), frame_len, frames


def sender(host, port, block, frame_len, frames, start, count, result, idx):
    view = memoryview(block)
    sent = 0
    try:
        s = socket.create_connection((host, port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.settimeout(None)
        pos = start
        while sent < count:
            n = min(frames - pos, count - sent, 1 << 16)
            s.sendall(view[pos * frame_len:(pos + n) * frame_len])
            sent += n
            pos = (pos + n) % frames
        # A graceful close: the kernel still delivers what is buffered.
        s.close()
        result[idx] = (sent, None)
    except OSError as e:
        result[idx] = (sent, e)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--sources", type=int, default=1)
    p.add_argument("--connections", type=int, default=2)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--prefix", default="src")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()
    if not (1 <= a.sources <= 10 ** ID_WIDTH):
        p.error(f"--sources must be 1..{10 ** ID_WIDTH}")
    if a.count < 1 or a.connections < 1:
        p.error("--count and --connections must be positive")

    t_build = time.monotonic()
    block, frame_len, frames = build_block(a.sources, a.size, a.prefix)
    if not a.quiet:
        print(f"gen_syslog: {frames} frames of {frame_len} B pre-built "
              f"({len(block) / 2**20:.1f} MiB, {a.sources} sources) in "
              f"{time.monotonic() - t_build:.2f}s", file=sys.stderr, flush=True)

    per = [a.count // a.connections + (1 if k < a.count % a.connections else 0)
           for k in range(a.connections)]
    result = [(0, None)] * a.connections
    threads = [
        threading.Thread(target=sender, args=(a.host, a.port, block, frame_len, frames,
                                              (k * frames) // a.connections, per[k], result, k))
        for k in range(a.connections) if per[k] > 0
    ]
    # The start, for the driver: the build above is not the receiver's time.
    print(f"start={time.time_ns() // 1000}", flush=True)
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    sent = sum(r[0] for r in result)
    errors = [r[1] for r in result if r[1] is not None]
    print(f"sent={sent} seconds={dt:.3f} rate={sent / dt if dt > 0 else 0:.0f}/s", flush=True)
    for e in errors:
        print(f"gen_syslog: connection failed: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
