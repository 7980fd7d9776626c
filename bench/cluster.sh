#!/usr/bin/env bash
# bench/cluster.sh — sluice on a 3-server NATS JetStream cluster (issue 11),
# against the embedded log, in one run; and drain takeover after kill -9.
#
# Builds sluice (release), starts three clustered `nats-server -js` on
# loopback (NATS_BIN, Debian's 2.9 by default; stream and buckets with 3
# replicas), then:
#
#   embedded    one `sluice server` with its disk log, driven by loggen
#   cluster-K   K sluice nodes (K in NODES, default 1,2,3) on the cluster,
#               each driven by its own loggen (CONNECTIONS_PER_NODE
#               connections), the stream emptied between runs
#
# loggen sends RFC 5424 octet-counted syslog over TCP, SIZE-byte messages,
# DURATION s, unthrottled. For each run it prints the messages stored
# (embedded: appended to its log; cluster: envelopes the stream
# acknowledged, `sluice_cluster_published_total` summed over the nodes,
# and how many envelopes a stream message held on average), the
# rate over loggen's start -> the last stored message, the ratio to the
# embedded log, CPU-seconds per million stored for the sluice processes and
# for the nats-servers, and what the nodes' buffers dropped. One machine
# (2 cores here): sluice, three nats-servers and loggen share the CPUs, so
# more nodes add contention, not capacity; the closing note extrapolates.
#
# Then TAKEOVERS times (default 10): with three nodes and one drain (to a
# null sink), `kill -9` the drain's owner and time until another node
# reports it RUNNING as its owner; the killed node is started again.
# Prints the median and the max.
#
# Usage: bench/cluster.sh [--no-build] [--keep]
# Env:   DURATION=10 SIZE=256 CONNECTIONS=2 (embedded) CONNECTIONS_PER_NODE=1
#        NODES=1,2,3 TAKEOVERS=10 NATS_BIN=/usr/sbin/nats-server
#        LEASE_SECS=5 BUFFER_MB=256 SETTLE=4 SLUICE_BIN=target/release/sluice
set -euo pipefail
LOG_TAG=cluster
# A publisher waiting on acknowledgements may pause for seconds: a run ends
# after 4 s without progress, not 1.5.
SETTLE=${SETTLE:-4}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NATS_BIN=${NATS_BIN:-/usr/sbin/nats-server}
NODES=${NODES:-1,2,3}
TAKEOVERS=${TAKEOVERS:-10}
CONNECTIONS_PER_NODE=${CONNECTIONS_PER_NODE:-1}
LEASE_SECS=${LEASE_SECS:-5}
BUFFER_MB=${BUFFER_MB:-256}

while (($#)); do
  case $1 in
    --no-build) BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

check_common
[[ -x $NATS_BIN ]] || die "no nats-server at $NATS_BIN (apt-get install nats-server, or set NATS_BIN)"
bench_init cluster
build_sluice
[[ -x $SLUICE_BIN ]] || die "no sluice binary at $SLUICE_BIN"
setup_syslog_ng

# --- the NATS cluster ---------------------------------------------------------
NATS_PORTS=() NATS_ROUTES=() NATS_PIDS=()
for i in 0 1 2; do NATS_PORTS[i]=$(free_port); NATS_ROUTES[i]=$(free_port); done
ROUTES=$(printf 'nats://127.0.0.1:%s,' "${NATS_ROUTES[@]}"); ROUTES=${ROUTES%,}
NATS_URLS=$(printf 'nats://127.0.0.1:%s,' "${NATS_PORTS[@]}"); NATS_URLS=${NATS_URLS%,}
start_nats() { # i
  local i=$1
  "$NATS_BIN" -js -a 127.0.0.1 -n "n$((i + 1))" -p "${NATS_PORTS[i]}" -sd "$WORK/nats$i" \
    --cluster_name bench --cluster "nats://127.0.0.1:${NATS_ROUTES[i]}" --routes "$ROUTES" \
    >"$WORK/nats$i.log" 2>&1 &
  NATS_PIDS[i]=$!
  PIDS+=("${NATS_PIDS[i]}")
  wait_port "${NATS_PORTS[i]}" "${NATS_PIDS[i]}" 10 || { tail_log "$WORK/nats$i.log"; die "nats-server $i did not start"; }
}
stop_nats() { local i; for i in 0 1 2; do stop_pid "${NATS_PIDS[i]}" 5; done; }
nats_cpu() { local i t=0; for i in 0 1 2; do t=$((t + $(cpu_ticks "${NATS_PIDS[i]}"))); done; echo "$t"; }

# --- sluice nodes -------------------------------------------------------------
declare -A NODE_PID NODE_HTTP NODE_SYSLOG
start_node() { # id [extra args...]
  local id=$1; shift
  local http=${NODE_HTTP[$id]:-$(free_port)} syslog=${NODE_SYSLOG[$id]:-$(free_port)}
  mkdir -p "$WORK/node-$id"
  cat >"$WORK/node-$id/sluice.toml" <<EOF
[cluster]
lease_secs = $LEASE_SECS
buffer_mb = $BUFFER_MB
EOF
  "$SLUICE_BIN" server -c "$WORK/node-$id/sluice.toml" --http "127.0.0.1:$http" --syslog "127.0.0.1:$syslog" \
    --grpc off --data-dir "$WORK/node-$id" --max-lines-per-second 0 --allow-drain-ranges 127.0.0.0/8 \
    "$@" >"$WORK/node-$id.log" 2>&1 &
  NODE_PID[$id]=$!
  NODE_HTTP[$id]=$http
  NODE_SYSLOG[$id]=$syslog
  PIDS+=("${NODE_PID[$id]}")
  wait_port "$http" "${NODE_PID[$id]}" 60 || { tail_log "$WORK/node-$id.log"; die "sluice node $id did not start"; }
}
node_api() { curl -sf --max-time 5 "http://127.0.0.1:${NODE_HTTP[$1]}$2" 2>/dev/null || true; }
stream_last() { json_field "$(node_api "$1" /v1/cluster)" 'd["stream"]["last_sequence"]'; }
published() { # node... -> envelopes the stream acknowledged, summed over the nodes
  local id s=0 v
  for id in "$@"; do v=$(metric_sum "$(node_api "$id" /metrics)" sluice_cluster_published_total); s=$((s + ${v:-0})); done
  echo "$s"
}
appended() { metric_sum "$(node_api "$1" /metrics)" sluice_log_appended_total; }

# loggen against every given node at once; sets SENT, T0 (µs) and LG_PIDS.
run_loggen() { # connections node...
  local conns=$1; shift
  local id
  LG_PIDS=()
  T0=$(now_us)
  for id in "$@"; do
    sng_env timeout -k 5 $((DURATION + 60)) "$LOGGEN_BIN" --inet --stream --syslog-proto \
      --size "$SIZE" --rate "$RATE" --interval "$DURATION" --active-connections "$conns" \
      127.0.0.1 "${NODE_SYSLOG[$id]}" >"$WORK/loggen-$id.log" 2>&1 </dev/null &
    LG_PIDS+=($!)
  done
}
loggen_sent() { # node...
  local id s=0
  for id in "$@"; do
    s=$((s + $(awk '/average rate/ { for (i = 1; i <= NF; i++) if ($i ~ /^count=/) { v = $i; sub(/count=/, "", v); sub(/,$/, "", v) } } END { print v + 0 }' "$WORK/loggen-$id.log")))
  done
  echo "$s"
}
# Polls PROBE (a command printing a number) until loggen ended and the number
# has not moved for SETTLE s; sets T_LAST (µs of the last change) and LAST.
settle() { # probe...
  local cur stable_us now
  stable_us=$(awk -v s="$SETTLE" 'BEGIN {printf "%d", s * 1000000}')
  LAST=$("$@"); T_LAST=$(now_us)
  while :; do
    sleep 0.1
    cur=$("$@"); now=$(now_us)
    [[ -n $cur && $cur != "$LAST" ]] && { LAST=$cur; T_LAST=$now; continue; }
    local running=0 p
    for p in "${LG_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
    ((running == 0 && now - T_LAST > stable_us)) && break
    ((now - T0 > (DURATION + MAX_SETTLE) * 1000000)) && break
  done
}

# Until the stream has a leader and current followers, and a line posted
# to each node was acknowledged (a fresh JetStream cluster elects its
# leaders for a few seconds; measuring then measures the elections).
wait_ready() { # node...
  local id i ok
  for i in $(seq 1 120); do
    ok=$(json_field "$(node_api "$1" /v1/cluster)" '1 if d["stream"]["leader"] and all(p["current"] for p in d["stream"]["peers"]) else 0')
    [[ $ok == 1 ]] && break
    sleep 0.5
  done
  [[ $ok == 1 ]] || die "the stream has no leader with current followers after 60 s"
  for id in "$@"; do
    local before after
    before=$(published "$id")
    curl -sf -X POST -H 'Content-Type: text/plain' --data-binary 'warm up' \
      "http://127.0.0.1:${NODE_HTTP[$id]}/logs?source_id=warmup" >/dev/null || die "cannot post to $id"
    for i in $(seq 1 100); do
      after=$(published "$id")
      ((after > before)) && break
      sleep 0.1
    done
    ((after > before)) || die "node $id: the stream did not acknowledge a line within 10 s"
  done
}

declare -a ROWS
row() { ROWS+=("$(printf '%-10s %10s %10s %11s %8s %12s %12s %8s %8s' "$@")"); }
EMBEDDED_RATE=

# --- embedded -----------------------------------------------------------------
log "embedded: one node, disk log, loggen ${DURATION}s x $CONNECTIONS conn x ${SIZE}B"
start_node solo
cpu0=$(cpu_ticks "${NODE_PID[solo]}")
base=$(appended solo); base=${base:-0}
run_loggen "$CONNECTIONS" solo
settle appended solo
cpu=$(($(cpu_ticks "${NODE_PID[solo]}") - cpu0))
stored=$((LAST - base)); sent=$(loggen_sent solo)
secs=$(awk -v a="$T0" -v b="$T_LAST" 'BEGIN {printf "%.2f", (b - a) / 1e6}')
EMBEDDED_RATE=$(awk -v n="$stored" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')
row embedded "$sent" "$stored" "$EMBEDDED_RATE" "1.00x" \
  "$(awk -v c="$cpu" -v n="$stored" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", c / t / n * 1e6}')" "-" "0" "-"
stop_pid "${NODE_PID[solo]}" 5

# --- the cluster with K nodes -------------------------------------------------
IFS=, read -r -a COUNTS <<<"$NODES"
for k in "${COUNTS[@]}"; do
  rm -rf "$WORK"/nats[012]
  for i in 0 1 2; do start_nats "$i"; done
  ids=()
  for ((j = 1; j <= k; j++)); do
    id="k$k-$j"; ids+=("$id")
    start_node "$id" --nats "$NATS_URLS" --node-id "$id"
  done
  wait_ready "${ids[@]}"
  log "cluster-$k: $k node(s), loggen ${DURATION}s x $CONNECTIONS_PER_NODE conn x ${SIZE}B each"
  s0=0; for id in "${ids[@]}"; do s0=$((s0 + $(cpu_ticks "${NODE_PID[$id]}"))); done
  n0=$(nats_cpu)
  base=$(published "${ids[@]}"); m0=$(stream_last "${ids[0]}")
  run_loggen "$CONNECTIONS_PER_NODE" "${ids[@]}"
  settle published "${ids[@]}"
  messages=$(($(stream_last "${ids[0]}") - ${m0:-0}))
  s1=0; dropped=0
  for id in "${ids[@]}"; do
    s1=$((s1 + $(cpu_ticks "${NODE_PID[$id]}")))
    d=$(metric_sum "$(node_api "$id" /metrics)" sluice_drops_total cluster_buffer_full); dropped=$((dropped + ${d:-0}))
  done
  ncpu=$(($(nats_cpu) - n0))
  stored=$((LAST - base)); sent=$(loggen_sent "${ids[@]}")
  secs=$(awk -v a="$T0" -v b="$T_LAST" 'BEGIN {printf "%.2f", (b - a) / 1e6}')
  rate=$(awk -v n="$stored" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')
  row "cluster-$k" "$sent" "$stored" "$rate" \
    "$(awk -v r="$rate" -v e="$EMBEDDED_RATE" 'BEGIN {printf "%.2fx", r / e}')" \
    "$(awk -v c="$((s1 - s0))" -v n="$stored" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", c / t / n * 1e6}')" \
    "$(awk -v c="$ncpu" -v n="$stored" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", c / t / n * 1e6}')" "$dropped" \
    "$(awk -v n="$stored" -v m="$messages" 'BEGIN {printf "%.0f", (m > 0 ? n / m : 0)}')"
  if [[ $k != "${COUNTS[-1]}" ]]; then
    for id in "${ids[@]}"; do stop_pid "${NODE_PID[$id]}" 5; done
    stop_nats
  fi
done

# --- drain takeover after kill -9 ----------------------------------------------
TAKEOVER_MS=()
if ((TAKEOVERS > 0)); then
  # Three nodes, whatever the last run had.
  for ((j = ${#ids[@]} + 1; j <= 3; j++)); do
    id="k$k-$j"; ids+=("$id")
    start_node "$id" --nats "$NATS_URLS" --node-id "$id"
  done
  sink_port=$(free_port)
  python3 "$BENCH/null_sink.py" 127.0.0.1 "$sink_port" "$WORK/sink.status" &
  PIDS+=($!)
  wait_port "$sink_port" "$!" 10 || die "null sink did not start"
  first=${ids[0]}
  curl -sf -X PUT -H 'Content-Type: application/json' \
    -d "{\"url\": \"tcp://127.0.0.1:$sink_port\"}" \
    "http://127.0.0.1:${NODE_HTTP[$first]}/v1/drains/bench" >/dev/null || die "cannot add the drain"
  owner_of() { # node -> the owner a node reports when it sees the drain RUNNING
    json_field "$(node_api "$1" /v1/drains/bench)" 'd["status"]["owner"] if d["status"]["state"] in ("RUNNING", "STANDBY") and d["status"].get("owner") else ""'
  }
  running_owner() { # node -> owner when that node itself runs it
    json_field "$(node_api "$1" /v1/drains/bench)" 'd["status"]["owner"] if d["status"]["state"] == "RUNNING" else ""'
  }
  for ((r = 1; r <= TAKEOVERS; r++)); do
    owner=
    for _ in $(seq 1 200); do
      for id in "${ids[@]}"; do owner=$(running_owner "$id"); [[ -n $owner ]] && break; done
      [[ -n $owner ]] && break
      sleep 0.1
    done
    [[ -n $owner ]] || die "takeover $r: no node runs the drain"
    kill -KILL "${NODE_PID[$owner]}"; wait "${NODE_PID[$owner]}" 2>/dev/null || true
    t0=$(now_us); new=
    while [[ -z $new ]]; do
      for id in "${ids[@]}"; do
        [[ $id == "$owner" ]] && continue
        o=$(running_owner "$id"); [[ -n $o && $o != "$owner" ]] && { new=$o; break; }
      done
      (($(now_us) - t0 > 60000000)) && die "takeover $r: nobody took the drain over within 60 s"
      sleep 0.05
    done
    ms=$((($(now_us) - t0) / 1000))
    TAKEOVER_MS+=("$ms")
    log "takeover $r: $owner killed, $new delivers after ${ms} ms"
    start_node "$owner" --nats "$NATS_URLS" --node-id "$owner"
  done
fi

# --- report -------------------------------------------------------------------
echo
echo "sluice $(git_rev) on $(nproc) CPUs; $("$NATS_BIN" --version 2>&1 | head -n1), 3 servers, replicas 3; loggen ${SIZE} B RFC 5424 over TCP, ${DURATION} s"
echo "msgs/s = stored / (loggen start -> last stored); cpu-s/M = CPU seconds per million stored"
printf '%-10s %10s %10s %11s %8s %12s %12s %8s %8s\n' run sent stored "msgs/s" "vs emb" "sluice cpu/M" "nats cpu/M" dropped "env/msg"
printf '%s\n' "${ROWS[@]}"
if ((${#TAKEOVER_MS[@]})); then
  sorted=$(printf '%s\n' "${TAKEOVER_MS[@]}" | sort -n)
  echo "drain takeover after kill -9 (lease ${LEASE_SECS} s), ${#TAKEOVER_MS[@]} runs: median $(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}') ms, max $(echo "$sorted" | tail -n1) ms ($(echo "$sorted" | tr '\n' ' '))"
fi
