"""A Loggregator v2 gRPC client for sluice's end-to-end tests.

Its stubs are generated at run time, with grpcio-tools, from Cloud Foundry's
published `loggregator.v2` definitions (envelope.proto, ingress.proto,
egress.proto in --proto-dir), so what it sends and reads is what any client
built from them does.

Receiving (--mode receive, `Egress.BatchedReceiver`; with --single,
`Egress.Receiver`): --selector SOURCE:TYPE[:NAMES] (repeatable; TYPE one of
log, counter, gauge, timer, event, or empty for any; NAMES the counter's name
or the gauge's comma-separated names), [--shard-id ID]
[--deterministic-name N] [--no-preferred-tags], --expect N --timeout S
[--pause P]. Prints "ready" once the server answered the call, waits P
seconds without reading (a slow consumer), then reads until N envelopes or
S seconds, and prints one JSON line per envelope ({"source_id", "type",
"seq", "name", "delta", "deprecated"}: seq from the tag, or from the
deprecated tag when tags were moved there) and "received N".

Usage:
  loggregator_client.py --proto-dir DIR --target HOST:PORT
      [--ca CA --cert CERT --key KEY --server-name metron] (TLS; plaintext without --ca)
      --mode batch|sender|send --source SOURCE --count N [--batch 100]
      [--empty-source] (source_id left empty, an `origin` tag carries SOURCE)

Envelope i (0-based) of SOURCE is, by i % 5: a log ("line i", OUT, or ERR when
i % 10 == 5), a counter ("requests", delta i, total 1000 + i), a gauge
(cpu = i / 2 "percentage", mem = 1024 * i "bytes"), a timer ("http", start i,
stop i + 10) or an event ("deploy i", "body i"); timestamp BASE + i (BASE: a
minute before the run, in ns), instance_id str(i % 3), tags seq=i,
origin=SOURCE, and a deprecated tag legacy=text "old". Exit 0 and print
"sent N base=BASE" on success; on an RPC error, exit 3 and print its code and
details.
"""

import argparse
import importlib
import os
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc

# A minute ago: inside any server's timestamp sanity window.
BASE_TS = time.time_ns() - 60_000_000_000


def load_stubs(proto_dir):
    out = tempfile.mkdtemp(prefix="loggregator-stubs-")
    for proto in ("envelope.proto", "ingress.proto", "egress.proto"):
        rc = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{proto_dir}",
                f"--python_out={out}",
                f"--grpc_python_out={out}",
                os.path.join(proto_dir, proto),
            ]
        )
        if rc != 0:
            sys.exit(f"protoc failed on {proto}: {rc}")
    sys.path.insert(0, out)
    return (
        importlib.import_module("envelope_pb2"),
        importlib.import_module("ingress_pb2_grpc"),
        importlib.import_module("egress_pb2"),
        importlib.import_module("egress_pb2_grpc"),
    )


def envelope(pb, source, i, empty_source):
    e = pb.Envelope(
        timestamp=BASE_TS + i,
        source_id="" if empty_source else source,
        instance_id=str(i % 3),
    )
    e.tags["seq"] = str(i)
    e.tags["origin"] = source
    e.deprecated_tags["legacy"].text = "old"
    kind = i % 5
    if kind == 0:
        e.log.payload = f"line {i}".encode()
        e.log.type = pb.Log.ERR if i % 10 == 5 else pb.Log.OUT
    elif kind == 1:
        e.counter.name = "requests"
        e.counter.delta = i
        e.counter.total = 1000 + i
    elif kind == 2:
        e.gauge.metrics["cpu"].unit = "percentage"
        e.gauge.metrics["cpu"].value = i / 2
        e.gauge.metrics["mem"].unit = "bytes"
        e.gauge.metrics["mem"].value = 1024.0 * i
    elif kind == 3:
        e.timer.name = "http"
        e.timer.start = i
        e.timer.stop = i + 10
    else:
        e.event.title = f"deploy {i}"
        e.event.body = f"body {i}"
    return e


def receive(a, pb, egress_pb, egress_grpc, channel):
    import json
    selectors = []
    for spec in a.selector:
        source, _, rest = spec.partition(":")
        kind, _, names = rest.partition(":")
        sel = egress_pb.Selector(source_id=source)
        if kind == "log":
            sel.log.SetInParent()
        elif kind == "counter":
            sel.counter.name = names
        elif kind == "gauge":
            sel.gauge.names.extend(n for n in names.split(",") if n)
        elif kind == "timer":
            sel.timer.SetInParent()
        elif kind == "event":
            sel.event.SetInParent()
        selectors.append(sel)
    fields = dict(
        shard_id=a.shard_id,
        selectors=selectors,
        use_preferred_tags=not a.no_preferred_tags,
        deterministic_name=a.deterministic_name,
    )
    stub = egress_grpc.EgressStub(channel)
    try:
        if a.single:
            call = stub.Receiver(egress_pb.EgressRequest(**fields), timeout=a.timeout)
        else:
            call = stub.BatchedReceiver(egress_pb.EgressBatchRequest(**fields), timeout=a.timeout)
        call.initial_metadata()
        print("ready", flush=True)
        time.sleep(a.pause)
        got = 0
        for item in call:
            envs = [item] if a.single else list(item.batch)
            for e in envs:
                seq = e.tags.get("seq")
                deprecated = seq is None and "seq" in e.deprecated_tags
                if deprecated:
                    seq = e.deprecated_tags["seq"].text
                kind = e.WhichOneof("message")
                name = e.counter.name if kind == "counter" else None
                delta = e.counter.delta if kind == "counter" else None
                print(json.dumps({"source_id": e.source_id, "type": kind, "seq": seq,
                                  "name": name, "delta": delta, "deprecated": deprecated}),
                      flush=True)
                got += 1
            if got >= a.expect:
                call.cancel()
                break
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            print(f"rpc error {err.code().name}: {err.details()}", flush=True)
            sys.exit(3)
    print(f"received {got}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--server-name", default="metron")
    ap.add_argument("--mode", choices=["batch", "sender", "send", "receive"], required=True)
    ap.add_argument("--source", default="")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--selector", action="append", default=[])
    ap.add_argument("--shard-id", default="")
    ap.add_argument("--deterministic-name", default="")
    ap.add_argument("--no-preferred-tags", action="store_true")
    ap.add_argument("--single", action="store_true")
    ap.add_argument("--expect", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--empty-source", action="store_true")
    a = ap.parse_args()

    pb, ingress_grpc, egress_pb, egress_grpc = load_stubs(a.proto_dir)
    if a.ca:
        read = lambda p: open(p, "rb").read() if p else None
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(a.ca),
            private_key=read(a.key),
            certificate_chain=read(a.cert),
        )
        channel = grpc.secure_channel(
            a.target, creds, options=[("grpc.ssl_target_name_override", a.server_name)]
        )
    else:
        channel = grpc.insecure_channel(a.target)
    if a.mode == "receive":
        receive(a, pb, egress_pb, egress_grpc, channel)
        return
    stub = ingress_grpc.IngressStub(channel)
    envs = [envelope(pb, a.source, i, a.empty_source) for i in range(a.count)]
    try:
        if a.mode == "batch":
            batches = (
                pb.EnvelopeBatch(batch=envs[k : k + a.batch])
                for k in range(0, len(envs), a.batch)
            )
            stub.BatchSender(batches, timeout=30)
        elif a.mode == "sender":
            stub.Sender(iter(envs), timeout=30)
        else:
            for k in range(0, len(envs), a.batch):
                stub.Send(pb.EnvelopeBatch(batch=envs[k : k + a.batch]), timeout=30)
    except grpc.RpcError as err:
        print(f"rpc error {err.code().name}: {err.details()}")
        sys.exit(3)
    print(f"sent {len(envs)} base={BASE_TS}")


if __name__ == "__main__":
    main()
