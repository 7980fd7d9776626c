#!/usr/bin/env bash
# bench/drains.sh — what drains cost sluice, in one run.
#
# Builds sluice (release), then runs each scenario against a fresh
# `sluice server` (own data dir, drains allowed to reach 127.0.0.0/8), with
# loggen (syslog-ng's load generator) sending RFC 5424, octet-counted, over
# TCP on 127.0.0.1: SIZE-byte messages, CONNECTIONS connections, DURATION s,
# as fast as sluice takes them, all under loggen's app name prg00000:
#
#   base   no drains: the ingest baseline
#   one    one syslog:// (TCP) drain for app prg00000 (`sluice drain add`)
#          to a null sink (bench/null_sink.py)
#   many   DRAINS (1000) syslog:// drains for apps app0001... (POST /v1/drains),
#          all RUNNING and connected to a null sink, none matching prg00000
#   rated  (only with --rated N) the `one` setup with loggen held to N msg/s
#
# It prints ingest msg/s (sluice_ingress_envelopes_total{protocol="syslog_tcp"}
# over loggen start -> last arrival), delivered msg/s (the drain's
# sluice_drain_sent_total over loggen start -> last send, checked against
# the frames the null sink counted), delivered/ingest, ingest against the
# baseline, the server's CPU-s per million messages, the drain's drops, and
# resident memory per idle drain; then whether the targets are met. See
# bench/README.md.
#
# Usage: bench/drains.sh [--only base,one,many,rated] [--rated N] [--no-build] [--keep]
# Env:   DURATION=10 CONNECTIONS=2 SIZE=256 RATE=100000000 (per connection)
#        DRAINS=1000 DRAIN_WAIT=60 (s for all drains to be RUNNING)
#        DRAIN_QUEUE= ([drains] queue_capacity; empty: sluice's default)
#        RATED= (total msg/s of the `rated` scenario; setting it selects it)
#        ONLY=base,one,many BUILD=1 KEEP=0 SLUICE_BIN=target/release/sluice
#        SLUICE_ARGS="extra server flags" PEERS_DIR=bench/out/peers
#        SETTLE=1.5 MAX_SETTLE=60
set -euo pipefail
LOG_TAG=drains
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # REPO BENCH, the common knobs, helpers

ONLY=${ONLY:-base,one,many}
DRAINS=${DRAINS:-1000}
DRAIN_WAIT=${DRAIN_WAIT:-60}
DRAIN_QUEUE=${DRAIN_QUEUE:-}
RATED=${RATED:-}
APP=prg00000 # loggen's APP-NAME: the app the `one` drain selects

while (($#)); do
  case $1 in
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --rated) RATED=${2:?--rated needs msg/s}; shift 2 ;;
    --rated=*) RATED=${1#--rated=}; shift ;;
    --no-build) BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "drains.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# --- selection -------------------------------------------------------------
declare -A WANT=()
IFS=', ' read -r -a _sel <<<"$ONLY"
for s in "${_sel[@]}"; do
  case $s in
    base|one|many|rated) WANT[$s]=1 ;;
    all) WANT[base]=1 WANT[one]=1 WANT[many]=1 ;;
    '') ;;
    *) die "unknown scenario '$s' (known: base, one, many, rated)" ;;
  esac
done
[[ -n $RATED ]] && WANT[rated]=1
((${#WANT[@]})) || die "nothing selected"
if [[ -n ${WANT[rated]:-} ]]; then
  [[ $RATED =~ ^[0-9]+$ && $RATED -ge $CONNECTIONS ]] || die "--rated/RATED must be a total msg/s >= CONNECTIONS"
fi
[[ $DRAINS =~ ^[0-9]+$ && $DRAINS -gt 0 && $DRAINS -le 9999 ]] || die "DRAINS must be 1..9999"
[[ -z $DRAIN_QUEUE || $DRAIN_QUEUE =~ ^[0-9]+$ ]] || die "DRAIN_QUEUE must be a number"
check_common
bench_init drains

# Each idle drain holds a connection: sluice and the null sink need a
# descriptor per drain. Raise the soft limit (inherited) if it is short.
if (($(ulimit -n) < DRAINS + 512)); then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  (($(ulimit -n) >= DRAINS + 512)) || log "warning: open files limit $(ulimit -n) is low for $DRAINS drains"
fi

# --- helpers -----------------------------------------------------------------------
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
threads_of() { awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
last_change() { # probe.tsv column -> "µs first" (first=1: unchanged since the first poll)
  awk -v c="$2" 'NR == 1 { p = $c; t = $1; f = 1; next } $c != p { p = $c; t = $1; f = 0 }
    END { print (t == "" ? 0 : t), f + 0 }' "$1"
}
per_s() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN {printf "%.0f", (b > a) ? n / ((b - a) / 1e6) : 0}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b - a) / 1e6}'; }
server_log_notes() { # server.log -> warnings/errors seen (count, first lines to stderr)
  local f=$RUN/server.log n
  n=$(grep -cE '\b(WARN|ERROR)\b' "$f" 2>/dev/null || true)
  n=${n:-0}
  if ((n > 0)); then
    log "$SCEN: $n WARN/ERROR lines in sluice's log, the first:"
    grep -E '\b(WARN|ERROR)\b' "$f" | head -n 5 | cut -c1-300 | sed 's/^/    | /' >&2
    echo "log: $n warn/error"
  fi
}

# --- null sink ------------------------------------------------------------------------
# bench/null_sink.py: reads and discards, counting bytes and newlines (sluice's
# syslog drain frames, "LEN <PRI>1 … MSG\n", end in exactly one LF, and
# loggen's payloads hold none, so newlines == frames). It publishes a
# connection's counts every MiB and when it closes: read it after sluice stopped.
SINK_PID= SINK_PORT=
start_sink() {
  SINK_PORT=$(free_port)
  python3 "$BENCH/null_sink.py" 127.0.0.1 "$SINK_PORT" "$RUN/sink.status" >"$RUN/sink.log" 2>&1 &
  SINK_PID=$!
  PIDS+=("$SINK_PID")
  wait_port "$SINK_PORT" "$SINK_PID" 10
}
sink_field() { awk -v i="$1" '{print $i}' "$RUN/sink.status" 2>/dev/null || echo 0; } # 1 msgs, 2 bytes, 3 conns
# The probe itself connects once (wait_port); connections beyond it are sluice's.
sink_conns() { local c; c=$(sink_field 3); echo $((${c:-0} > 0 ? c - 1 : 0)); }

# --- sluice ---------------------------------------------------------------------------
SL_PID= SL_PORT=
start_sluice() { # -> 0 when listening; sets SL_PID SL_PORT SLUICE_HTTP, or FAIL_NOTE
  [[ -z $SLUICE_BUILD_NOTE ]] || { FAIL_NOTE=$SLUICE_BUILD_NOTE; return 1; }
  [[ -x $SLUICE_BIN ]] || { FAIL_NOTE="no binary at $SLUICE_BIN"; return 1; }
  SL_PORT=$(free_port)
  SLUICE_HTTP=$(free_port)
  local args=(server --http "127.0.0.1:$SLUICE_HTTP" --syslog "127.0.0.1:$SL_PORT"
    --data-dir "$RUN/data" --allow-drain-ranges 127.0.0.0/8
    --max-lines-per-second 0) # one app at full speed: no noisy-neighbour cap
  if [[ -n $DRAIN_QUEUE ]]; then
    printf '[drains]\nqueue_capacity = %s\n' "$DRAIN_QUEUE" >"$RUN/sluice.toml"
    args+=(--config "$RUN/sluice.toml")
  fi
  # shellcheck disable=SC2206
  args+=($SLUICE_ARGS)
  echo "$SLUICE_BIN ${args[*]}" >"$RUN/server.cmd"
  "$SLUICE_BIN" "${args[@]}" >"$RUN/server.log" 2>&1 </dev/null &
  SL_PID=$!
  PIDS+=("$SL_PID")
  if ! wait_port "$SL_PORT" "$SL_PID" 20 || ! wait_port "$SLUICE_HTTP" "$SL_PID" 5; then
    FAIL_NOTE="sluice did not start (its log is above)"
    return 1
  fi
  local i
  for ((i = 0; i < 50; i++)); do [[ -n $(metrics) ]] && break; sleep 0.1; done
  [[ -n $(metrics) ]] || { FAIL_NOTE="sluice /metrics is not answering"; return 1; }
}
ingress() { local v; v=$(metric_sum "$(metrics)" sluice_ingress_envelopes_total 'protocol="syslog_tcp"'); echo "${v:-0}"; }
probe_ingress() { ingress; }
DRAIN1=bench1
probe_drain() { # "ingress sent" of the one drain, from one scrape
  local m a b
  m=$(metrics)
  a=$(metric_sum "$m" sluice_ingress_envelopes_total 'protocol="syslog_tcp"')
  b=$(metric_sum "$m" sluice_drain_sent_total "drain=\"$DRAIN1\"")
  echo "${a:-0} ${b:-0}"
}
drain_states() { # -> "RUNNING=1000 STARTING=2" over GET /v1/drains
  api /v1/drains | python3 -c 'import collections, json, sys
try:
    d = json.load(sys.stdin)["drains"]
except Exception:
    print("unreadable"); sys.exit(0)
c = collections.Counter(x.get("status", {}).get("state", "?") for x in d)
print(" ".join(f"{k}={v}" for k, v in sorted(c.items())) or "none")'
}
wait_running() { # n -> 0 once n drains are RUNNING and n connections reached the sink
  local n=$1 deadline=$(($(now_us) + DRAIN_WAIT * 1000000)) st
  while (($(now_us) < deadline)); do
    kill -0 "$SL_PID" 2>/dev/null || return 1
    st=$(drain_states)
    [[ $st == "RUNNING=$n" && $(sink_conns) -ge $n ]] && { STATES=$st; return 0; }
    sleep 0.5
  done
  STATES=$(drain_states)
  return 1
}
stop_sluice() {
  [[ -n $SL_PID ]] && stop_pid "$SL_PID" 10
  [[ -n $SINK_PID ]] && { sleep 0.3; stop_pid "$SINK_PID" 5; } # its final counts are written on exit
  return 0
}

# Adds drains NAME-app0001... for app0001... to URL over one keep-alive
# connection; prints "added failed seconds" and the first errors to stderr.
add_many() { # n url
  python3 - "$SLUICE_HTTP" "$1" "$2" <<'EOF'
import http.client, json, sys, time
port, n, url = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
ok = bad = 0
t = time.monotonic()
for i in range(1, n + 1):
    app = f"app{i:04d}"
    body = json.dumps({"name": f"idle-{app}", "url": url, "apps": [app]})
    try:
        conn.request("POST", "/v1/drains", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        text = r.read()
    except (OSError, http.client.HTTPException) as e:
        bad += 1
        if bad <= 3:
            print(f"POST {app}: {e}", file=sys.stderr)
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        continue
    if r.status == 201:
        ok += 1
    else:
        bad += 1
        if bad <= 3:
            print(f"POST {app}: {r.status} {text[:200]!r}", file=sys.stderr)
print(ok, bad, f"{time.monotonic() - t:.2f}")
EOF
}

# --- scenarios -------------------------------------------------------------------
# Each sets, for its row: ING (msg/s), DEL (msg/s or ""), CPU (cpu-s/Mmsg), NOTE,
# and scenario-specific values below.
declare -A ING_OF=() DEL_OF=() CPU_OF=() NOTE_OF=() RECV_OF=()
RSS_PER_DRAIN= DELIVERED_RATIO=
FAILED=0

scenario_fail() { # note
  log "$SCEN: $1"
  tail_log "$RUN/server.log"
  NOTE_OF[$SCEN]=$1
  FAILED=1
  stop_sluice
}

# The load, and the common part of the row: ingest rate, CPU, notes.
# Sets RECV and ROW_NOTES.
load_run() { # probe-fn
  log "$SCEN: loggen ${DURATION}s x $CONNECTIONS conn x ${SIZE}B at ${LOGGEN_RATE:-$RATE}/conn/s -> 127.0.0.1:$SL_PORT (sluice pid $SL_PID)"
  local known=()
  [[ -n $SINK_PID ]] && known+=("$SINK_PID")
  local sink0=0
  [[ -n $SINK_PID ]] && sink0=$(cpu_ticks "$SINK_PID")
  # A snapshot 1 s in: loggen starts with a burst (it catches up on its rate),
  # so losses before and after it are told apart.
  rm -f "$RUN/metrics-1s.txt"
  (sleep 1 && metrics >"$RUN/metrics-1s.txt") </dev/null &
  PIDS+=("$!")
  drive_loggen "$SCEN" "$SL_PORT" "$SL_PID" "$1" "${known[@]}"
  SINK_CPU=
  [[ -n $SINK_PID ]] && SINK_CPU=$(awk -v c=$(($(cpu_ticks "$SINK_PID") - sink0)) -v t="$CLK_TCK" 'BEGIN {printf "%.1f", c / t}')
  local t_ing
  read -r t_ing _ < <(last_change "$RUN/probe.tsv" 2)
  RECV=$(ingress)
  ING_OF[$SCEN]=$(per_s "$RECV" "$DL_T0" "$t_ing")
  RECV_OF[$SCEN]=$RECV
  CPU_OF[$SCEN]=$(awk -v c="$DL_CPU" -v t="$CLK_TCK" -v n="$RECV" 'BEGIN {printf "%.2f", (n > 0) ? (c / t) / (n / 1e6) : 0}')
  ROW_NOTES="recv=$RECV sent=$DL_SENT $(secs "$DL_T0" "$t_ing")s"
  ((DL_SENT > 0 && RECV != DL_SENT)) && ROW_NOTES+=" recv-sent=$((RECV - DL_SENT))"
  ROW_NOTES+=" cpus=${DL_BUSY_PCT}%"
  ((DL_OTHER_PCT < 5)) || ROW_NOTES+=" [other load ${DL_OTHER_PCT}% of a CPU]"
  kill -0 "$SL_PID" 2>/dev/null || ROW_NOTES+=" server died!"
  if ((RECV == 0)); then FAILED=1; log "$SCEN: nothing arrived"; tail_log "$RUN/server.log"; fi
  log "$SCEN: ingested $RECV (loggen sent $DL_SENT) -> ${ING_OF[$SCEN]} msg/s"
  T_ING=$t_ing
}

run_base() {
  start_sluice || { scenario_fail "$FAIL_NOTE"; return 0; }
  load_run probe_ingress
  printf '%s\n' "$(metrics)" >"$RUN/metrics.txt"
  local q
  q=$(metric_sum "$(metrics)" sluice_drops_total 'reason="queue_full"')
  ((${q:-0} == 0)) || ROW_NOTES+=" drops=$q"
  local logn
  logn=$(server_log_notes)
  stop_sluice
  NOTE_OF[$SCEN]="$ROW_NOTES${logn:+ $logn}"
}

run_one() { # the `one` and `rated` scenarios
  start_sink || { scenario_fail "null sink did not start"; return 0; }
  start_sluice || { scenario_fail "$FAIL_NOTE"; return 0; }
  local url="syslog://127.0.0.1:$SINK_PORT" how=cli
  if ! "$SLUICE_BIN" drain add "$DRAIN1" "$url" --app "$APP" --server "http://127.0.0.1:$SLUICE_HTTP" \
    >"$RUN/drain-add.out" 2>&1 </dev/null; then
    log "$SCEN: \`sluice drain add\` failed; adding it with POST /v1/drains"
    tail_log "$RUN/drain-add.out" 5
    how="api (CLI failed)"
    curl -sf --max-time 5 -H 'Content-Type: application/json' \
      -d "{\"name\":\"$DRAIN1\",\"url\":\"$url\",\"apps\":[\"$APP\"]}" \
      "http://127.0.0.1:$SLUICE_HTTP/v1/drains" >>"$RUN/drain-add.out" 2>&1 ||
      { scenario_fail "could not add the drain (see $RUN/drain-add.out)"; return 0; }
  fi
  if ! wait_running 1; then
    scenario_fail "drain not RUNNING and connected after ${DRAIN_WAIT}s: $STATES, sink connections $(sink_conns)"
    return 0
  fi
  log "$SCEN: drain $DRAIN1 ($how) $url for app $APP is RUNNING"

  load_run probe_drain
  local m t_sent first sent dropped q st state retries lerr notices
  read -r t_sent first < <(last_change "$RUN/probe.tsv" 3)
  m=$(metrics)
  printf '%s\n' "$m" >"$RUN/metrics.txt"
  sent=$(metric_sum "$m" sluice_drain_sent_total "drain=\"$DRAIN1\"")
  dropped=$(metric_sum "$m" sluice_drain_dropped_total "drain=\"$DRAIN1\"")
  q=$(metric_sum "$m" sluice_drops_total 'reason="queue_full"')
  st=$(api "/v1/drains/$DRAIN1")
  printf '%s\n' "$st" >"$RUN/drain-status.json"
  state=$(json_field "$st" 'd["status"]["state"]')
  retries=$(json_field "$st" 'd["status"]["retries"]')
  lerr=$(json_field "$st" 'd["status"].get("last_error") or ""')
  local ssent sdropped
  ssent=$(json_field "$st" 'd["status"]["sent"]')
  sdropped=$(json_field "$st" 'd["status"]["dropped"]')
  local logn
  logn=$(server_log_notes)
  stop_sluice # closes the drain's connection: the sink publishes its last counts
  local smsgs sbytes
  smsgs=$(sink_field 1) sbytes=$(sink_field 2)

  sent=${sent:-0} dropped=${dropped:-0}
  DEL_OF[$SCEN]=$(per_s "$sent" "$DL_T0" "$t_sent")
  local ratio
  ratio=$(awk -v d="${DEL_OF[$SCEN]}" -v i="${ING_OF[$SCEN]}" 'BEGIN {printf "%.2f", (i > 0) ? d / i : 0}')
  [[ $SCEN == one ]] && DELIVERED_RATIO=$ratio
  # Loss notices ("sluice: N messages lost …") go into the app's stream, so the
  # drain carries them too: sent + dropped = ingested + notices.
  notices=$((sent + dropped - RECV))
  local n="dropped=$dropped" d1
  d1=$(metric_sum "$(cat "$RUN/metrics-1s.txt" 2>/dev/null)" sluice_drain_dropped_total "drain=\"$DRAIN1\"")
  [[ -n $d1 ]] && n+=" ($((dropped - d1)) after the first second)"
  n+=" sent=$sent ($(awk -v s="$sent" -v r="$RECV" 'BEGIN {printf "%.1f", (r > 0) ? 100 * s / r : 0}')% of recv) in $(secs "$DL_T0" "$t_sent")s"
  ((first)) && n+=" [sent stopped moving before the last second: rate is a lower bound]"
  ((notices != 0)) && n+=" loss-notices=$notices"
  n+=" sink=$smsgs"
  ((smsgs > 0)) && n+=" ($(awk -v b="$sbytes" -v m="$smsgs" 'BEGIN {printf "%.0f", b / m}') B/frame)"
  [[ -n $SINK_CPU ]] && n+=" sink-cpu=${SINK_CPU}s"
  ((smsgs != sent)) && n+=" [sink-sent=$((smsgs - sent))]"
  [[ -n $q && $q != "$dropped" ]] && n+=" drops_total{queue_full}=$q"
  [[ $ssent == "$sent" && $sdropped == "$dropped" ]] || n+=" [status sent=$ssent dropped=$sdropped vs metrics]"
  [[ $state == RUNNING ]] || n+=" state=${state:-?}"
  ((${retries:-0} == 0)) || n+=" retries=$retries"
  [[ -z $lerr ]] || n+=" last_error=\"$lerr\""
  NOTE_OF[$SCEN]="$n $ROW_NOTES${logn:+ $logn}"
  log "$SCEN: delivered $sent (dropped $dropped) -> ${DEL_OF[$SCEN]} msg/s; sink counted $smsgs frames, $sbytes bytes"
}

run_many() {
  start_sink || { scenario_fail "null sink did not start"; return 0; }
  start_sluice || { scenario_fail "$FAIL_NOTE"; return 0; }
  local url="syslog://127.0.0.1:$SINK_PORT"
  # Before: an idle server that has answered a few API calls (buffers, the
  # allocator's first arenas), so the difference is the drains'.
  api /v1/drains >/dev/null
  metrics >/dev/null
  sleep 1
  local rss0 fds0 thr0 added
  rss0=$(rss_kib "$SL_PID") fds0=$(fds_of "$SL_PID") thr0=$(threads_of "$SL_PID")
  log "$SCEN: adding $DRAINS drains (apps app0001…) to $url over POST /v1/drains"
  added=$(add_many "$DRAINS" "$url" 2>"$RUN/add.err") || true
  tail_log "$RUN/add.err" 3
  local ok bad took
  read -r ok bad took <<<"${added:-0 $DRAINS ?}"
  log "$SCEN: added $ok (failed $bad) in ${took}s; waiting for all to be RUNNING"
  ((ok == DRAINS)) || { scenario_fail "only $ok of $DRAINS drains added (see above)"; return 0; }
  local t_wait0
  t_wait0=$(now_us)
  if ! wait_running "$DRAINS"; then
    scenario_fail "not all drains RUNNING and connected after ${DRAIN_WAIT}s: $STATES, sink connections $(sink_conns)"
    return 0
  fi
  log "$SCEN: all RUNNING, $(sink_conns) connections at the sink, after $(secs "$t_wait0" "$(now_us)")s more"
  sleep 2 # let the tasks and the allocator go quiet
  local rss1 fds1 thr1 msize
  rss1=$(rss_kib "$SL_PID") fds1=$(fds_of "$SL_PID") thr1=$(threads_of "$SL_PID")
  msize=$(metrics | wc -c)
  RSS_PER_DRAIN=$(awk -v a="$rss0" -v b="$rss1" -v n="$DRAINS" 'BEGIN {printf "%.1f", (b - a) / n}')
  log "$SCEN: VmRSS $rss0 -> $rss1 KiB: $RSS_PER_DRAIN KiB per drain; fds $fds0 -> $fds1, threads $thr0 -> $thr1; /metrics is $msize bytes"

  load_run probe_ingress
  local m dsent ddrop st_after
  m=$(metrics)
  printf '%s\n' "$m" >"$RUN/metrics.txt"
  dsent=$(metric_sum "$m" sluice_drain_sent_total)
  ddrop=$(metric_sum "$m" sluice_drain_dropped_total)
  st_after=$(drain_states)
  local rss2 logn
  rss2=$(rss_kib "$SL_PID")
  logn=$(server_log_notes)
  stop_sluice
  local n="rss/drain=${RSS_PER_DRAIN} KiB (VmRSS $((rss0 / 1024))->$((rss1 / 1024)) MiB, $((rss2 / 1024)) MiB after the load)"
  n+=" fds=$fds0->$fds1 threads=$thr0->$thr1 added in ${took}s"
  [[ $st_after == "RUNNING=$DRAINS" ]] || n+=" after the load: $st_after"
  ((${dsent:-0} == 0 && ${ddrop:-0} == 0)) || n+=" [idle drains sent=${dsent:-0} dropped=${ddrop:-0}]"
  NOTE_OF[$SCEN]="$n $ROW_NOTES${logn:+ $logn}"
}

run_scenario() { # name
  SCEN=$1
  RUN=$WORK/$SCEN
  mkdir -p "$RUN"
  SL_PID= SL_PORT= SINK_PID= SINK_PORT= SLUICE_HTTP= FAIL_NOTE= ROW_NOTES= RECV=0 LOGGEN_RATE=
  log "$SCEN: starting"
  case $SCEN in
    base) run_base ;;
    one) run_one ;;
    rated) LOGGEN_RATE=$((RATED / CONNECTIONS)) run_one ;;
    many) run_many ;;
  esac
  LOGGEN_RATE=
  sleep 1 # sockets in TIME_WAIT, writeback
}

# --- main ----------------------------------------------------------------------------
build_sluice
setup_syslog_ng # loggen
[[ -x $SLUICE_BIN ]] && { "$SLUICE_BIN" drain --help >/dev/null 2>&1 ||
  log "warning: $SLUICE_BIN has no \`drain\` command (an old build?)"; }

BUSY=$(busy_pct)
log "CPUs: $(nproc), busy before the runs: ${BUSY}%"
((BUSY < 10)) || log "warning: the machine is not idle (${BUSY}% busy); numbers will be noisy"

ORDER=()
for s in base one rated many; do [[ -n ${WANT[$s]:-} ]] && ORDER+=("$s"); done
for s in "${ORDER[@]}"; do run_scenario "$s"; done

# --- report ----------------------------------------------------------------------------
label() {
  case $1 in
    base) echo "no drains" ;;
    one) echo "1 syslog drain" ;;
    rated) echo "1 drain @${RATED}/s" ;;
    many) echo "$DRAINS idle drains" ;;
  esac
}
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "<") ? (v < t) : (v >= t); print ok ? "MET" : "NOT MET" }'; }
BASE=${ING_OF[base]:-}
{
  echo
  echo "sluice drains benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git_rev), $(nproc) CPUs"
  echo "loggen/syslog-ng $(sng_version), sluice $SLUICE_BIN; drain queue ${DRAIN_QUEUE:-default}"
  echo "loggen: RFC 5424 octet-counted over TCP, ${SIZE} B messages, $CONNECTIONS connections, ${DURATION} s, unthrottled (app $APP)"
  echo "ingest = sluice_ingress_envelopes_total{syslog_tcp} / (loggen start -> last arrival); delivered = sluice_drain_sent_total / (loggen start -> last send)"
  echo "vs-base = ingest / ingest with no drains; deliv/ing = delivered / ingest; CPUs ${BUSY}% busy before the runs"
  echo
  printf '%-18s %12s %15s %7s %9s %11s  %s\n' scenario 'ingest msg/s' 'delivered msg/s' vs-base deliv/ing cpu-s/Mmsg notes
  for s in "${ORDER[@]}"; do
    ing=${ING_OF[$s]:-}
    if [[ -z $ing ]]; then
      printf '%-18s %12s %15s %7s %9s %11s  %s\n' "$(label "$s")" - - - - - "${NOTE_OF[$s]:-not run}"
      continue
    fi
    vs=- dr=-
    [[ -n $BASE && $BASE != 0 ]] && vs=$(awk -v a="$ing" -v b="$BASE" 'BEGIN {printf "%.2fx", a / b}')
    [[ -n ${DEL_OF[$s]:-} && $ing != 0 ]] && dr=$(awk -v a="${DEL_OF[$s]}" -v b="$ing" 'BEGIN {printf "%.2fx", a / b}')
    printf '%-18s %12s %15s %7s %9s %11s  %s\n' "$(label "$s")" "$ing" "${DEL_OF[$s]:--}" "$vs" "$dr" "${CPU_OF[$s]}" "${NOTE_OF[$s]}"
  done
  echo
  t=()
  [[ -n $DELIVERED_RATIO ]] && t+=("delivered >= 0.8x ingest: ${DELIVERED_RATIO}x $(verdict "$DELIVERED_RATIO" 0.8 '>=')")
  [[ -n $RSS_PER_DRAIN ]] && t+=("rss/drain < 64 KiB: ${RSS_PER_DRAIN} KiB $(verdict "$RSS_PER_DRAIN" 64 '<')")
  if [[ -n ${ING_OF[many]:-} && -n $BASE && $BASE != 0 ]]; then
    r=$(awk -v a="${ING_OF[many]}" -v b="$BASE" 'BEGIN {printf "%.2f", a / b}')
    t+=("ingest with $DRAINS drains >= 0.8x: ${r}x $(verdict "$r" 0.8 '>=')")
  fi
  if ((${#t[@]})); then
    printf 'targets: %s' "${t[0]}"
    for x in "${t[@]:1}"; do printf '; %s' "$x"; done
    echo
  fi
} | tee "$WORK/report.txt"
mkdir -p "$BENCH/out"
cp "$WORK/report.txt" "$BENCH/out/drains-last.txt"
exit "$FAILED"
