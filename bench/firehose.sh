#!/usr/bin/env bash
# bench/firehose.sh — the firehose under load: fan-out and latency.
#
# Builds sluice (release), starts one `sluice server` (disk log, defaults)
# and measures, in order:
#   1. max ingest: `sluice emit --over grpc` of MSGS messages with no
#      consumer (msg/s, as grpc.sh measures it);
#   2. fan-out: FULL `sluice nozzle --stats` streams each taking the whole
#      firehose plus a shard group of SHARDS nozzles sharing one shard_id,
#      while MSGS more messages arrive as fast as taken: per stream
#      delivered/ingested and the loss the server told in-band (`dropped`),
#      and for the group delivered/ingested over its members together;
#   3. latency: one nozzle while MSGS/2 messages arrive at half the max
#      ingest rate of step 1: p50/p99/max from each envelope's timestamp
#      (set by the emitter when it builds the batch) to its arrival.
# Every process shares the machine's CPUs (on 2 CPUs, 15 processes).
#
# Usage: bench/firehose.sh [--no-build]
# Env:   MSGS=500000 SIZE=256 FULL=10 SHARDS=4 BUILD=1 SLUICE_BIN=target/release/sluice
set -euo pipefail
LOG_TAG=firehose
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MSGS=${MSGS:-500000}
FULL=${FULL:-10}
SHARDS=${SHARDS:-4}
while (($#)); do
  case $1 in
    --no-build) BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
check_common
bench_init firehose
build_sluice
[[ -x $SLUICE_BIN ]] || die "no binary at $SLUICE_BIN"

http=$(free_port) grpc=$(free_port)
"$SLUICE_BIN" server --http "127.0.0.1:$http" --syslog 127.0.0.1:0 --grpc "127.0.0.1:$grpc" \
  --data-dir "$WORK/data" --max-lines-per-second 0 >"$WORK/server.log" 2>&1 </dev/null &
SERVER=$!
PIDS+=("$SERVER")
wait_port "$grpc" "$SERVER" 60 || die "sluice did not start: $(tail -n 5 "$WORK/server.log")"
SLUICE_HTTP=$http
ingested() { metric_sum "$(metrics)" sluice_ingress_envelopes_total; }
emit() { # count rate source -> the emitter's "sent … (N/s)" line
  "$SLUICE_BIN" emit --over grpc --target "127.0.0.1:$grpc" --count "$1" --rate "$2" \
    --size "$SIZE" --source "$3" 2>&1 || die "emit failed"
}
wait_ingested() { # total: until the server counted it (or 3 s without change)
  local got prev=-1 stable=0
  while :; do
    got=$(ingested)
    got=${got:-0}
    ((got >= $1)) && break
    if [[ $got == "$prev" ]]; then ((++stable >= 60)) && break; else stable=0; fi
    prev=$got
    sleep 0.05
  done
  echo "$got"
}
nozzle() { # name source [extra args…]: a --stats nozzle in the background, report in $WORK/nozzle-NAME
  local name=$1 source=$2
  shift 2
  "$SLUICE_BIN" nozzle --target "127.0.0.1:$grpc" --source-id "$source" --type log --stats \
    --idle 3 --duration 600 "$@" >"$WORK/nozzle-$name" 2>&1 &
  PIDS+=("$!")
  NOZZLES+=("$!")
}
field() { # report-file word -> the number after that word
  awk -v w="$2" '{ for (i = 1; i < NF; i++) if ($i == w) { v = $(i + 1); sub(/[(\/s)]+$/, "", v); sub(/^\(/, "", v); print v; exit } }' "$1"
}

# 1. Max ingest, no consumer.
t0=$(now_us)
emit "$MSGS" 0 warmup >/dev/null
base=$(wait_ingested "$MSGS")
t1=$(now_us)
MAX_RATE=$(awk -v n="$base" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / ((b - a) / 1e6) }')
log "max ingest (no consumer): $base messages, $MAX_RATE msg/s"

# 2. Fan-out: FULL whole-firehose nozzles and a shard group of SHARDS.
NOZZLES=()
for ((i = 0; i < FULL; i++)); do nozzle "full-$i" fanout; done
for ((i = 0; i < SHARDS; i++)); do nozzle "shard-$i" fanout --shard-id bench-group; done
sleep 1 # every stream subscribed before the first message
children_ticks k0
s0=$(cpu_ticks "$SERVER")
before=$(ingested)
t0=$(now_us)
emit "$MSGS" 0 fanout >/dev/null
after=$(wait_ingested $((before + MSGS)))
t1=$(now_us)
FANOUT_RATE=$(awk -v n=$((after - before)) -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / ((b - a) / 1e6) }')
for pid in "${NOZZLES[@]}"; do wait "$pid" || true; done
children_ticks k1
s1=$(cpu_ticks "$SERVER")
sent=$((after - before))
FANOUT_CPU=$(awk -v s=$((s1 - s0)) -v k=$((k1 - k0)) -v hz="$CLK_TCK" 'BEGIN { printf "server %.1f cpu-s, nozzles and emitter %.1f cpu-s", s / hz, k / hz }')

# 3. Latency at half the max ingest rate.
NOZZLES=()
nozzle latency latency
sleep 1
half=$((MAX_RATE / 2))
emit $((MSGS / 2)) "$half" latency >/dev/null
for pid in "${NOZZLES[@]}"; do wait "$pid" || true; done
server_cpu=$(awk -v t="$(cpu_ticks "$SERVER")" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz }')

echo
echo "sluice firehose benchmark — $(date -u +%FT%TZ), $(git_rev), $(nproc) CPUs, ${SIZE}B messages"
echo "max gRPC ingest, no consumer: $MAX_RATE msg/s ($base messages)"
echo "fan-out: $sent messages in at $FANOUT_RATE msg/s ($(awk -v f="$FANOUT_RATE" -v m="$MAX_RATE" 'BEGIN { printf "%.2f", f / m }')x of max) to $FULL full streams + a shard group of $SHARDS"
printf '  %-9s %10s %9s %10s\n' stream delivered dropped delivered/ingested
group=0 gdrop=0
for f in "$WORK"/nozzle-full-* "$WORK"/nozzle-shard-*; do
  got=$(field "$f" received) drop=$(field "$f" dropped)
  name=${f##*/nozzle-}
  printf '  %-9s %10s %9s %10s\n' "$name" "${got:-?}" "${drop:-?}" \
    "$(awk -v g="${got:-0}" -v s="$sent" 'BEGIN { printf "%.3f", (s > 0) ? g / s : 0 }')"
  [[ $name == shard-* ]] && group=$((group + ${got:-0})) gdrop=$((gdrop + ${drop:-0}))
done
echo "  CPU in this step: $FANOUT_CPU"
echo "  shard group together: delivered $group, dropped $gdrop, delivered/ingested $(awk -v g="$group" -v s="$sent" 'BEGIN { printf "%.3f", (s > 0) ? g / s : 0 }')"
echo "latency at $half msg/s (half of max), $((MSGS / 2)) messages: $(sed -n 's/.*latency_ms/latency_ms/p' "$WORK/nozzle-latency")" \
  "(received $(field "$WORK/nozzle-latency" received), dropped $(field "$WORK/nozzle-latency" dropped))"
echo "server CPU over the whole run: ${server_cpu}s"
