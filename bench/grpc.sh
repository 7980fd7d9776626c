#!/usr/bin/env bash
# bench/grpc.sh — gRPC ingest against syslog ingest, in one run.
#
# Builds sluice (release), then, ROUNDS times, into a fresh `sluice server`
# (disk log, its default settings) each: `sluice emit --over grpc` (one
# BatchSender stream, batches of 100, as go-loggregator sends) and
# `sluice emit --over syslog` (one TCP connection, octet-counted RFC 5424),
# MSGS messages of SIZE bytes each, as fast as the server takes them.
# Prints per transport: ingest msg/s (the server's
# sluice_ingress_envelopes_total over the time from the emitter's start to
# the last arrival), the server's CPU-seconds per million messages, the
# emitter's, and the ratio gRPC / syslog (target >= 1.0x). The emitter runs
# on the same 2 CPUs, as loggen does in ingest.sh.
#
# Usage: bench/grpc.sh [--no-build] [--rounds N]
# Env:   MSGS=1000000 SIZE=256 ROUNDS=3 BUILD=1 SLUICE_BIN=target/release/sluice
set -euo pipefail
LOG_TAG=grpc
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MSGS=${MSGS:-1000000}
ROUNDS=${ROUNDS:-3}
while (($#)); do
  case $1 in
    --no-build) BUILD=0; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
check_common
bench_init grpc
build_sluice
[[ -x $SLUICE_BIN ]] || die "no binary at $SLUICE_BIN"
CLK_TCK=$(getconf CLK_TCK)

# One run: a fresh server, one emitter; prints "rate server-cpu emitter-cpu".
run_one() { # grpc|syslog
  local over=$1 data=$WORK/data-$1 http grpc syslog pid t0 t1 e0 got=0 prev=-1 stable=0
  rm -rf "$data"
  http=$(free_port) grpc=$(free_port) syslog=$(free_port)
  "$SLUICE_BIN" server --http "127.0.0.1:$http" --syslog "127.0.0.1:$syslog" \
    --grpc "127.0.0.1:$grpc" --data-dir "$data" --max-lines-per-second 0 >"$WORK/server-$over.log" 2>&1 </dev/null &
  pid=$!
  PIDS+=("$pid")
  wait_port "$grpc" "$pid" 60 || die "sluice did not start: $(tail -n 5 "$WORK/server-$over.log")"
  SLUICE_HTTP=$http
  local target=127.0.0.1:$grpc
  [[ $over == syslog ]] && target=127.0.0.1:$syslog
  local c0 ch0
  c0=$(cpu_ticks "$pid")
  children_ticks ch0
  t0=$(now_us)
  "$SLUICE_BIN" emit --over "$over" --target "$target" --count "$MSGS" --size "$SIZE" \
    --source bench >"$WORK/emit-$over.log" 2>&1 || die "emit failed: $(cat "$WORK/emit-$over.log")"
  children_ticks e0
  # Until every message arrived (or the count stops moving for 3 s).
  while :; do
    got=$(metric_sum "$(metrics)" sluice_ingress_envelopes_total)
    got=${got:-0}
    ((got >= MSGS)) && break
    if [[ $got == "$prev" ]]; then ((++stable >= 60)) && break; else stable=0; fi
    prev=$got
    sleep 0.05
  done
  t1=$(now_us)
  local c1
  c1=$(cpu_ticks "$pid")
  stop_pid "$pid" 10
  awk -v n="$got" -v a="$t0" -v b="$t1" -v sc=$((c1 - c0)) -v ec=$((e0 - ch0)) -v t="$CLK_TCK" \
    'BEGIN { printf "%.0f %.2f %.2f %d\n", n / ((b - a) / 1e6), (sc / t) / (n / 1e6), (ec / t) / (n / 1e6), n }'
  rm -rf "$data"
}

declare -A RATES=() SCPU=() ECPU=()
for ((r = 1; r <= ROUNDS; r++)); do
  for over in grpc syslog; do
    read -r rate scpu ecpu n < <(run_one "$over")
    log "round $r $over: $n messages, $rate msg/s, server $scpu cpu-s/Mmsg, emitter $ecpu"
    RATES[$over]+="$rate " SCPU[$over]+="$scpu " ECPU[$over]+="$ecpu "
  done
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo
echo "sluice gRPC ingest benchmark — $(date -u +%FT%TZ), $(git_rev), $(nproc) CPUs, $MSGS x ${SIZE}B, $ROUNDS rounds (medians)"
printf '%-8s %10s %18s %19s   %s\n' transport msgs/s server-cpu-s/Mmsg emitter-cpu-s/Mmsg rounds
for over in grpc syslog; do
  printf '%-8s %10s %18s %19s   %s\n' "$over" "$(echo "${RATES[$over]}" | median)" \
    "$(echo "${SCPU[$over]}" | median)" "$(echo "${ECPU[$over]}" | median)" "${RATES[$over]}"
done
g=$(echo "${RATES[grpc]}" | median) s=$(echo "${RATES[syslog]}" | median)
awk -v g="$g" -v s="$s" 'BEGIN { r = (s > 0) ? g / s : 0; printf "target: gRPC >= 1.0x syslog ingest: %.2fx %s\n", r, (r >= 1.0) ? "MET" : "NOT MET" }'
