#!/usr/bin/env bash
# bench/log.sh — what the durable log costs and gives: many sources, memory,
# reads, drain catch-up; in one run.
#
# Builds sluice (release), then runs each scenario against a fresh
# `sluice server` (own data dir, disk log with its default [log] settings),
# loaded by bench/gen_syslog.py: RFC 5424, octet-counted, over TCP on
# 127.0.0.1, SIZE-byte messages, CONNECTIONS connections, as fast as sluice
# takes them, the APP-NAME (sluice's source id) cycling through N ids
# (src000000, src000001, …):
#
#   sources  SOURCES_MSGS messages from 1 source, then from SOURCES (100,000)
#            sources, each into a fresh server: ingest msg/s, the ratio
#            many/one (target >= 0.8x), CPU-s per million messages
#   memory   MEM_MSGS (1,000,000) messages from 1 source, then from SOURCES
#            sources: RssAnon of the server (/proc/PID/status) once ingest
#            settled (target <= 256 MiB for 1 source)
#   reads    on the 1-source server of `memory`: GET /api/v1/read/src000000
#            ?limit=1000 (oldest first, and &descending=true) and a --recent
#            dump (GET /logs/app:src000000?recent=100000&follow=false), cold
#            (server restarted, page cache dropped when permitted) and warm,
#            in ms; and how long the restart took
#   catchup  a syslog drain whose receiver is down, CATCHUP_MSGS (1,000,000)
#            messages ingested behind it, then a receiver (bench/null_sink.py)
#            started: delivered msg/s until the drain's `behind` is 0 (or the
#            receiver counted them all), against the ingest rate of the backlog
#
# Ingest msg/s is sluice_ingress_envelopes_total{protocol="syslog_tcp"} over
# the time from the generator's first connect to the last arrival. See
# bench/README.md.
#
# Usage: bench/log.sh [--only sources,memory,reads,catchup] [--rounds N] [--no-build] [--keep]
# Env:   SOURCES=100000 SOURCES_MSGS=2000000 MEM_MSGS=1000000 CATCHUP_MSGS=1000000
#        CONNECTIONS=2 SIZE=256 RECENT=100000 READS=20 DUMPS=5 (warm repeats)
#        DROP_CACHES=auto (1: required, 0: cold = restart only)
#        CATCHUP_WAIT=180 (s for the drain to catch up) RSS_WAIT=2 (s before RssAnon)
#        ROUNDS=1 (`sources`: alternate 1 and SOURCES sources N times; rows show the median)
#        ONLY=sources,memory,reads,catchup BUILD=1 KEEP=0
#        SLUICE_BIN=target/release/sluice SLUICE_ARGS="extra server flags"
#        SETTLE=1.5 MAX_SETTLE=60
set -euo pipefail
LOG_TAG=log
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # REPO BENCH, the common knobs, helpers

ONLY=${ONLY:-sources,memory,reads,catchup}
SOURCES=${SOURCES:-100000}
SOURCES_MSGS=${SOURCES_MSGS:-2000000}
MEM_MSGS=${MEM_MSGS:-1000000}
CATCHUP_MSGS=${CATCHUP_MSGS:-1000000}
RECENT=${RECENT:-100000}
READS=${READS:-20}
DUMPS=${DUMPS:-5}
DROP_CACHES=${DROP_CACHES:-auto}
CATCHUP_WAIT=${CATCHUP_WAIT:-180}
RSS_WAIT=${RSS_WAIT:-2}
ROUNDS=${ROUNDS:-1}
MEM_TARGET_MB=256
SRC1=src000000 # the generator's first id: the only one with --sources 1

while (($#)); do
  case $1 in
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
    --rounds=*) ROUNDS=${1#--rounds=}; shift ;;
    --no-build) BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "log.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# --- selection -------------------------------------------------------------
declare -A WANT=()
IFS=', ' read -r -a _sel <<<"$ONLY"
for s in "${_sel[@]}"; do
  case $s in
    sources|memory|reads|catchup) WANT[$s]=1 ;;
    all) WANT[sources]=1 WANT[memory]=1 WANT[reads]=1 WANT[catchup]=1 ;;
    '') ;;
    *) die "unknown scenario '$s' (known: sources, memory, reads, catchup)" ;;
  esac
done
((${#WANT[@]})) || die "nothing selected"
for v in ROUNDS SOURCES SOURCES_MSGS MEM_MSGS CATCHUP_MSGS RECENT READS DUMPS CATCHUP_WAIT CONNECTIONS SIZE; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer"
done
((SOURCES <= 1000000)) || die "SOURCES must be at most 1000000"
[[ $DROP_CACHES =~ ^(auto|0|1)$ ]] || die "DROP_CACHES must be auto, 0 or 1"
check_common
[[ -f $BENCH/gen_syslog.py && -f $BENCH/null_sink.py ]] || die "bench/gen_syslog.py or bench/null_sink.py is missing"
bench_init log

# --- helpers -----------------------------------------------------------------------
per_s() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN {printf "%.0f", (b > a) ? n / ((b - a) / 1e6) : 0}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b - a) / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "<=") ? (v <= t) : (v >= t); print ok ? "MET" : "NOT MET" }'; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || true; } # pid field -> KiB
mib() { [[ -n $1 ]] && awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}' || echo "?"; }
median() { sort -n | awk '{v[NR] = $1} END { if (NR) printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The end of a run from probe.tsv: the midpoint between the last poll before
# the final value and the first poll that saw it (polls are 50 ms apart).
end_time() {
  awk '{t[NR] = $1; v[NR] = $2} END { f = v[NR]
    for (i = 1; i <= NR; i++) if (v[i] == f) { printf "%.0f\n", (i > 1) ? (t[i - 1] + t[i]) / 2 : t[i]; exit } }' "$1"
}
server_log_notes() { # -> "log: N warn/error" (and the first lines to stderr) when sluice logged any
  local f=$RUN/server.log n
  n=$(grep -cE '\b(WARN|ERROR)\b' "$f" 2>/dev/null || true)
  n=${n:-0}
  if ((n > 0)); then
    log "$SCEN: $n WARN/ERROR lines in sluice's log, the first:"
    grep -E '\b(WARN|ERROR)\b' "$f" | head -n 5 | cut -c1-300 | sed 's/^/    | /' >&2
    echo "log: $n warn/error"
  fi
}

# Page cache: `echo 3 > /proc/sys/vm/drop_caches` (root). DROP_CACHES=auto
# tries it once and falls back to "cold = a server restart" if refused.
CAN_DROP=0
if [[ $DROP_CACHES != 0 && -n ${WANT[reads]:-} ]]; then
  if sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
    CAN_DROP=1
  elif [[ $DROP_CACHES == 1 ]]; then
    die "DROP_CACHES=1 but /proc/sys/vm/drop_caches is not writable (run as root, or DROP_CACHES=0)"
  else
    log "cannot drop the page cache (not root?): cold reads are after a server restart only"
  fi
fi
drop_caches() { ((CAN_DROP)) || return 0; sync; echo 3 >/proc/sys/vm/drop_caches; }

# --- sluice ---------------------------------------------------------------------------
SL_PID= SL_PORT= SL_START_S= SL_DATA=
start_sluice() { # [extra server args] -> 0 once /metrics answers; sets SL_PID SL_PORT SLUICE_HTTP SL_START_S, or FAIL_NOTE
  [[ -z $SLUICE_BUILD_NOTE ]] || { FAIL_NOTE=$SLUICE_BUILD_NOTE; return 1; }
  [[ -x $SLUICE_BIN ]] || { FAIL_NOTE="no binary at $SLUICE_BIN"; return 1; }
  SL_PORT=$(free_port)
  SLUICE_HTTP=$(free_port)
  local args=(server --http "127.0.0.1:$SLUICE_HTTP" --syslog "127.0.0.1:$SL_PORT"
    --data-dir "$SL_DATA" --log-backend disk --max-lines-per-second 0 "$@")
  # shellcheck disable=SC2206
  args+=($SLUICE_ARGS)
  echo "$SLUICE_BIN ${args[*]}" >>"$RUN/server.cmd"
  local t0
  t0=$(now_us)
  "$SLUICE_BIN" "${args[@]}" >>"$RUN/server.log" 2>&1 </dev/null &
  SL_PID=$!
  PIDS+=("$SL_PID")
  if ! wait_port "$SL_PORT" "$SL_PID" 120 || ! wait_port "$SLUICE_HTTP" "$SL_PID" 30; then
    if grep -qiE "(unexpected|unrecognized|unknown).*--log-backend" "$RUN/server.log"; then
      FAIL_NOTE="this sluice has no --log-backend (a build from before the disk log?)"
    else
      FAIL_NOTE="sluice did not start (its log is above)"
    fi
    return 1
  fi
  local i
  for ((i = 0; i < 100; i++)); do [[ -n $(metrics) ]] && break; sleep 0.05; done
  [[ -n $(metrics) ]] || { FAIL_NOTE="sluice /metrics is not answering"; return 1; }
  SL_START_S=$(secs "$t0" "$(now_us)")
}
stop_sluice() { [[ -n $SL_PID ]] && stop_pid "$SL_PID" 30; SL_PID=; }
ingress() { local v; v=$(metric_sum "$(metrics)" sluice_ingress_envelopes_total 'protocol="syslog_tcp"'); echo "${v:-0}"; }
probe_ingress() { ingress; }

# One load: gen_syslog.py sends MSGS messages cycling through N sources to
# the running server. Sets ING_RATE ING_RECV ING_CPU ING_NOTES.
ingest_run() { # label n-sources msgs
  local label=$1 n=$2 msgs=$3 out=$RUN/gen-$2.log
  log "$label: $msgs messages x ${SIZE}B from $n source(s) over $CONNECTIONS connections -> 127.0.0.1:$SL_PORT (sluice pid $SL_PID)"
  drive_load "$label" "$SL_PID" probe_ingress 0 $((10 + msgs / 50000)) "$out" -- \
    python3 "$BENCH/gen_syslog.py" 127.0.0.1 "$SL_PORT" --count "$msgs" --sources "$n" \
    --connections "$CONNECTIONS" --size "$SIZE"
  local t_start t_end sent m appended q
  t_start=$(sed -n 's/^start=\([0-9]*\)$/\1/p' "$out")
  sent=$(sed -n 's/^sent=\([0-9]*\).*/\1/p' "$out")
  [[ -n $t_start ]] || t_start=$DL_T0
  t_end=$(end_time "$RUN/probe.tsv")
  mv "$RUN/probe.tsv" "$RUN/probe-$label.tsv"
  m=$(metrics)
  printf '%s\n' "$m" >"$RUN/metrics-$label.txt"
  ING_RECV=$(metric_sum "$m" sluice_ingress_envelopes_total 'protocol="syslog_tcp"')
  ING_RECV=${ING_RECV:-0}
  appended=$(metric_sum "$m" sluice_log_appended_total)
  q=$(metric_sum "$m" sluice_drops_total)
  ING_RATE=$(per_s "$ING_RECV" "$t_start" "$t_end")
  ING_CPU=$(awk -v c="$DL_CPU" -v t="$CLK_TCK" -v n="$ING_RECV" 'BEGIN {printf "%.2f", (n > 0) ? (c / t) / (n / 1e6) : 0}')
  ING_NOTES="recv=$ING_RECV sent=${sent:-?} $(secs "$t_start" "$t_end")s"
  [[ -n $sent && $sent != "$ING_RECV" ]] && ING_NOTES+=" recv-sent=$((ING_RECV - sent))"
  if [[ -z $appended ]]; then ING_NOTES+=" appended=?(no sluice_log_appended_total)"
  elif ((appended != ING_RECV)); then ING_NOTES+=" appended=$appended"; fi
  ((${q:-0} == 0)) || ING_NOTES+=" drops=$q"
  ((DL_LG_RC == 0)) || ING_NOTES+=" [generator exited $DL_LG_RC]"
  ING_NOTES+=" cpus=${DL_BUSY_PCT}%"
  ((DL_OTHER_PCT < 5)) || ING_NOTES+=" [other load ${DL_OTHER_PCT}% of a CPU]"
  kill -0 "$SL_PID" 2>/dev/null || ING_NOTES+=" server died!"
  if ((ING_RECV == 0)); then FAILED=1; log "$label: nothing arrived"; tail_log "$out" 5; tail_log "$RUN/server.log"; fi
  log "$label: ingested $ING_RECV (sent ${sent:-?}) -> $ING_RATE msg/s, $ING_CPU cpu-s/Mmsg"
}

FAILED=0
scenario_fail() { # note
  log "$SCEN: $1"
  tail_log "$RUN/server.log"
  NOTE_OF[$SCEN]=$1
  FAILED=1
  stop_sluice
}
new_run() { # name: a fresh dir and data dir
  SCEN=$1
  RUN=$WORK/$1
  SL_DATA=$RUN/data
  mkdir -p "$RUN"
  SL_PID= FAIL_NOTE=
}
end_run() { # remove the data (GBs), let sockets and writeback settle
  stop_sluice
  [[ $KEEP == 1 ]] || rm -rf "$SL_DATA"
  sleep 1
}

declare -A NOTE_OF=() ING_OF=() CPU_OF=() INOTE_OF=() RSS_OF=() MEMNOTE_OF=() MEMING_OF=()

# --- sources: ingest from 1 vs SOURCES sources ------------------------------------------
# With ROUNDS > 1 the two alternate ROUNDS times; each row is its median round.
run_sources() {
  local n r k
  for ((r = 1; r <= ROUNDS; r++)); do
    for n in 1 "$SOURCES"; do
      k=$n/$r
      new_run "sources-$n"
      ((ROUNDS == 1)) || new_run "sources-$n-$r"
      start_sluice || { scenario_fail "$FAIL_NOTE"; NOTE_OF[sources-$n]=$FAIL_NOTE; continue; }
      ingest_run "$SCEN" "$n" "$SOURCES_MSGS"
      local m srcs
      m=$(metrics)
      srcs=$(metric_sum "$m" sluice_log_sources)
      ING_OF[$k]=$ING_RATE CPU_OF[$k]=$ING_CPU
      INOTE_OF[$k]="$ING_NOTES log_sources=${srcs:-?} RssAnon=$(mib "$(status_kib "$SL_PID" RssAnon)")MiB"
      local logn
      logn=$(server_log_notes)
      [[ -n $logn ]] && INOTE_OF[$k]+=" $logn"
      end_run
    done
  done
  local ranked pick all i
  for n in 1 "$SOURCES"; do
    mapfile -t ranked < <(for ((i = 1; i <= ROUNDS; i++)); do
      [[ -z ${ING_OF[$n/$i]:-} ]] || echo "${ING_OF[$n/$i]} $i"
    done | sort -n)
    ((${#ranked[@]})) || continue
    pick=${ranked[$(((${#ranked[@]} - 1) / 2))]##* }
    ING_OF[$n]=${ING_OF[$n/$pick]} CPU_OF[$n]=${CPU_OF[$n/$pick]} INOTE_OF[$n]=${INOTE_OF[$n/$pick]}
    if ((ROUNDS > 1)); then
      all=$(for ((i = 1; i <= ROUNDS; i++)); do printf '%s,' "${ING_OF[$n/$i]:-failed}"; done)
      INOTE_OF[$n]="[rounds ${all%,}; median: round $pick] ${INOTE_OF[$n]}"
    fi
  done
}

# --- memory: RssAnon after MEM_MSGS messages --------------------------------------------
# With reads selected, the 1-source server stays up for run_reads.
run_memory() { # n-sources
  local n=$1
  new_run "memory-$n"
  start_sluice || { scenario_fail "$FAIL_NOTE"; return 1; }
  local idle
  idle=$(status_kib "$SL_PID" RssAnon)
  ingest_run "$SCEN" "$n" "$MEM_MSGS"
  sleep "$RSS_WAIT" # the fsync timer, the index checkpoint, the allocator going quiet
  local m rss vm hwm ents srcs lb
  m=$(metrics)
  printf '%s\n' "$m" >"$RUN/metrics-after.txt"
  rss=$(status_kib "$SL_PID" RssAnon) vm=$(status_kib "$SL_PID" VmRSS) hwm=$(status_kib "$SL_PID" VmHWM)
  ents=$(metric_sum "$m" sluice_log_entries) srcs=$(metric_sum "$m" sluice_log_sources)
  lb=$(metric_sum "$m" sluice_log_bytes)
  RSS_OF[$n]=$(mib "$rss")
  MEMING_OF[$n]=$ING_RATE
  MEMNOTE_OF[$n]="RssAnon idle $(mib "$idle") MiB; VmRSS $(mib "$vm") MiB, VmHWM $(mib "$hwm") MiB; indexed=${ents:-?} sources=${srcs:-?} log=$(mib $((${lb:-0} / 1024))) MiB; ingest $ING_RATE msg/s ($ING_NOTES)"
  local logn
  logn=$(server_log_notes)
  [[ -n $logn ]] && MEMNOTE_OF[$n]+=" $logn"
  log "$SCEN: RssAnon $(mib "$rss") MiB (idle $(mib "$idle")), VmHWM $(mib "$hwm") MiB, $ents indexed in $srcs sources"
  if [[ $n == 1 && -n ${WANT[reads]:-} ]]; then return 0; fi
  end_run
}

# --- reads: cold and warm, on the memory-1 server --------------------------------------
declare -A COLD_OF=() WARM_OF=() RES_OF=()
RESTART_NOTES=()
timed_get() { # path body-file -> "http_code ms bytes"
  curl -s -o "$2" --max-time 300 -w '%{http_code} %{time_total} %{size_download}' \
    "http://127.0.0.1:$SLUICE_HTTP$1" 2>/dev/null | awk '{printf "%s %.1f %s\n", $1, $2 * 1000, $3}' || echo "000 0 0"
}
describe_body() { # kind file -> what came back
  case $1 in
    read) python3 -c 'import json, sys
try:
    d = json.load(open(sys.argv[1]))
    b = d.get("envelopes", {}).get("batch", [])
    print(f"{len(b)} envelopes")
except Exception as e:
    print(f"unreadable JSON: {e}")' "$2" ;;
    dump) echo "$(wc -l <"$2") lines" ;;
  esac
}
restart_cold() { # why
  stop_sluice
  drop_caches
  start_sluice || return 1
  RESTART_NOTES+=("$1: up in ${SL_START_S}s")
  log "reads: restarted in ${SL_START_S}s$( ((CAN_DROP)) && echo ", page cache dropped") ($1)"
}
run_reads() {
  SCEN=reads
  [[ -n $SL_PID ]] || { NOTE_OF[reads]="no server from the memory scenario"; FAILED=1; return 0; }
  local -A url=(
    [read]="/api/v1/read/$SRC1?limit=1000"
    [read-desc]="/api/v1/read/$SRC1?limit=1000&descending=true"
    [dump]="/logs/app:$SRC1?recent=$RECENT&follow=false"
  )
  local k code ms bytes i kind
  for k in read read-desc dump; do
    restart_cold "before the cold $k" || { scenario_fail "restart: $FAIL_NOTE"; return 0; }
    kind=${k%-desc}
    read -r code ms bytes < <(timed_get "${url[$k]}" "$RUN/body-$k")
    COLD_OF[$k]=$ms
    RES_OF[$k]="HTTP $code, $(describe_body "$kind" "$RUN/body-$k"), $bytes B"
    [[ $code == 200 ]] || { FAILED=1; log "reads: GET ${url[$k]} -> $code: $(head -c 300 "$RUN/body-$k")"; }
    log "reads: cold $k ${ms} ms (${RES_OF[$k]})"
  done
  # Warm: the same requests again, server and page cache as they are now.
  for k in read read-desc dump; do
    local n=$READS
    [[ $k == dump ]] && n=$DUMPS
    : >"$RUN/warm-$k.ms"
    for ((i = 0; i < n; i++)); do
      read -r code ms bytes < <(timed_get "${url[$k]}" "$RUN/body-warm")
      [[ $code == 200 ]] || log "reads: warm GET ${url[$k]} -> $code"
      echo "$ms" >>"$RUN/warm-$k.ms"
    done
    WARM_OF[$k]="$(median <"$RUN/warm-$k.ms") ($(sort -n "$RUN/warm-$k.ms" | sed -n '1p') – $(sort -n "$RUN/warm-$k.ms" | sed -n '$p'), n=$n)"
    log "reads: warm $k median ${WARM_OF[$k]} ms"
  done
  local logn
  logn=$(server_log_notes)
  [[ -n $logn ]] && NOTE_OF[reads]=$logn
  SCEN=memory-1
  end_run
}

# --- catchup: a drain whose receiver is down, then up -----------------------------------
CU_ROW=
run_catchup() {
  new_run catchup
  start_sluice --allow-drain-ranges 127.0.0.0/8 || { scenario_fail "$FAIL_NOTE"; return 0; }
  local dport name=catchup
  dport=$(free_port) # nobody listens there until the sink starts
  local body
  body="{\"name\":\"$name\",\"url\":\"syslog://127.0.0.1:$dport\",\"apps\":[\"$SRC1\"]}"
  if ! curl -sf --max-time 10 -H 'Content-Type: application/json' -d "$body" \
    "http://127.0.0.1:$SLUICE_HTTP/v1/drains" >"$RUN/drain-add.out" 2>&1; then
    scenario_fail "could not add the drain (POST /v1/drains; see $RUN/drain-add.out)"
    return 0
  fi
  sleep 1
  local st state0
  st=$(api "/v1/drains/$name")
  state0=$(json_field "$st" 'd["status"]["state"]')
  log "catchup: drain $name -> syslog://127.0.0.1:$dport (nobody listening) is ${state0:-?}"

  ingest_run catchup-backlog 1 "$CATCHUP_MSGS"
  local backlog_rate=$ING_RATE backlog_notes=$ING_NOTES
  sleep 1
  st=$(api "/v1/drains/$name")
  printf '%s\n' "$st" >"$RUN/drain-before.json"
  local behind0 sent0 state1
  behind0=$(json_field "$st" 'd["status"].get("behind", "")')
  sent0=$(json_field "$st" 'd["status"]["sent"]')
  state1=$(json_field "$st" 'd["status"]["state"]')
  log "catchup: backlog in; drain ${state1:-?}, behind=${behind0:-absent} sent=${sent0:-?}"

  # The receiver comes up; a restart skips the rest of the drain's retry wait
  # (up to 5 s in its first minute of failing). Delivery is timed at the sink.
  local sink_pid t_up
  python3 "$BENCH/null_sink.py" 127.0.0.1 "$dport" "$RUN/sink.status" >"$RUN/sink.log" 2>&1 &
  sink_pid=$!
  PIDS+=("$sink_pid")
  wait_port "$dport" "$sink_pid" 10 || { scenario_fail "null sink did not start"; return 0; }
  t_up=$(now_us)
  local kicked=restart
  curl -sf --max-time 30 -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$SLUICE_HTTP/v1/drains/$name/restart" >/dev/null 2>&1 ||
    kicked="no restart (POST …/restart failed; waited for the retry)"
  # Polled 4 times a second with curl and sed only (no Python: the CPUs are
  # the drain's); `behind` from the status, `sent` from /metrics.
  local deadline=$((t_up + CATCHUP_WAIT * 1000000)) now behind sent last_sent=-1 t_move=$t_up done=0 why=
  : >"$RUN/catchup.tsv"
  while :; do
    sleep 0.25
    now=$(now_us)
    behind=$(api "/v1/drains/$name" | sed -n 's/.*"behind":\([0-9]*\).*/\1/p')
    sent=$(metric_sum "$(metrics)" sluice_drain_sent_total "drain=\"$name\"")
    echo "$now ${behind:--} ${sent:--} $(awk '{print $1, $2}' "$RUN/sink.status" 2>/dev/null)" >>"$RUN/catchup.tsv"
    [[ $sent != "$last_sent" ]] && { last_sent=$sent; t_move=$now; }
    if [[ -n $behind && $behind == 0 && ${sent:-0} -gt ${sent0:-0} ]]; then why="behind=0"; done=1; break; fi
    if [[ -n $sent ]] && ((sent - ${sent0:-0} >= CATCHUP_MSGS)); then why="sent all"; done=1; break; fi
    if [[ -z $behind ]] && ((${sent:-0} > ${sent0:-0} && now - t_move > 3000000)); then
      why="sent stopped moving (no behind in the status)"; break
    fi
    if [[ -z $behind ]] && ((now - t_move > 15000000)); then
      why="nothing sent for 15 s (no behind in the status)"; break
    fi
    ((now < deadline)) || { why="timed out after ${CATCHUP_WAIT}s"; break; }
    kill -0 "$SL_PID" 2>/dev/null || { why="server died"; break; }
  done
  local t_done=$now
  st=$(api "/v1/drains/$name")
  printf '%s\n' "$st" >"$RUN/drain-after.json"
  local m dsent ddrop behind_m
  m=$(metrics)
  printf '%s\n' "$m" >"$RUN/metrics-after.txt"
  dsent=$(metric_sum "$m" sluice_drain_sent_total "drain=\"$name\"")
  ddrop=$(metric_sum "$m" sluice_drain_dropped_total "drain=\"$name\"")
  local logn
  logn=$(server_log_notes)
  stop_sluice # closes the drain's connection: the sink publishes its last counts
  sleep 0.3
  stop_pid "$sink_pid" 5
  local smsgs sbytes sfirst slast
  read -r smsgs sbytes _ sfirst slast < <(cat "$RUN/sink.status" 2>/dev/null || echo "0 0 0 0 0")
  local deliv_rate=0 span=0
  if [[ -n $sfirst ]] && awk -v a="$sfirst" -v b="$slast" 'BEGIN {exit !(b > a)}'; then
    span=$(awk -v a="$sfirst" -v b="$slast" 'BEGIN {printf "%.3f", b - a}')
    deliv_rate=$(awk -v n="$smsgs" -v s="$span" 'BEGIN {printf "%.0f", n / s}')
  fi
  local wait_first
  wait_first=$(awk -v a="$t_up" -v f="$sfirst" 'BEGIN {printf "%.2f", (f > 0) ? f - a / 1e6 : -1}')
  local n="sink=$smsgs frames ($(awk -v b="$sbytes" -v m="$smsgs" 'BEGIN {printf "%.0f", (m > 0) ? b / m : 0}') B/frame) in ${span}s"
  if ((smsgs > 0)); then n+=", first frame ${wait_first}s after the sink was up ($kicked)"; else n+=" ($kicked)"; fi
  n+="; polling stopped after $(secs "$t_up" "$t_done")s: $why"
  n+="; drain sent=${dsent:-?} dropped=${ddrop:-?}, before the receiver: ${state1:-?} behind=${behind0:-absent} sent=${sent0:-?}"
  ((done)) || n+=" [did not catch up]"
  ((smsgs >= CATCHUP_MSGS)) || n+=" [the sink got $((CATCHUP_MSGS - smsgs)) fewer than the backlog]"
  [[ -n $logn ]] && n+="; $logn (connect failures while the receiver was down are expected)"
  CU_ROW="$backlog_rate $deliv_rate"
  NOTE_OF[catchup]="$n; backlog ingest: $backlog_notes"
  ((smsgs > 0)) || FAILED=1
  log "catchup: delivered $smsgs in ${span}s -> $deliv_rate msg/s (backlog ingested at $backlog_rate msg/s)"
  end_run
}

# --- main ----------------------------------------------------------------------------
build_sluice
if [[ -x $SLUICE_BIN ]] && ! "$SLUICE_BIN" server --help 2>/dev/null | grep -q -- --log-backend; then
  log "warning: $SLUICE_BIN has no --log-backend (a build from before the disk log?)"
fi

BUSY=$(busy_pct)
log "CPUs: $(nproc), busy before the runs: ${BUSY}%"
((BUSY < 10)) || log "warning: the machine is not idle (${BUSY}% busy); numbers will be noisy"

[[ -n ${WANT[memory]:-}${WANT[reads]:-} ]] && { run_memory 1 || true; }
[[ -n ${WANT[reads]:-} ]] && run_reads
[[ -n ${WANT[memory]:-} ]] && { run_memory "$SOURCES" || true; }
[[ -n ${WANT[sources]:-} ]] && run_sources
[[ -n ${WANT[catchup]:-} ]] && run_catchup

# --- report ----------------------------------------------------------------------------
LAST_INGEST=
if [[ -f $BENCH/out/ingest-last.txt ]]; then
  LAST_INGEST=$(awk '$1 == "sluice-disk" && $2 ~ /^[0-9]+$/ {print $2}' "$BENCH/out/ingest-last.txt")
  LAST_INGEST_AT=$(sed -n 's/^sluice ingest benchmark — \([^,]*\),.*/\1/p' "$BENCH/out/ingest-last.txt")
fi
{
  echo
  echo "sluice log benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git_rev), $(nproc) CPUs, sluice $SLUICE_BIN"
  echo "load: bench/gen_syslog.py, RFC 5424 octet-counted over TCP, ${SIZE} B messages, $CONNECTIONS connections, unthrottled;"
  echo "      disk log with default [log] settings; CPUs ${BUSY}% busy before the runs"
  targets=()
  if [[ -n ${WANT[sources]:-} ]]; then
    echo
    echo "ingest by number of sources ($SOURCES_MSGS messages each$( ((ROUNDS == 1)) || echo ", $ROUNDS rounds, each row its median"); msgs/s = received / (first connect -> last arrival))"
    printf '  %-9s %10s %7s %11s  %s\n' sources msgs/s vs-1 cpu-s/Mmsg notes
    for n in 1 "$SOURCES"; do
      if [[ -z ${ING_OF[$n]:-} ]]; then printf '  %-9s %10s %7s %11s  %s\n' "$n" - - - "${NOTE_OF[sources-$n]:-not run}"; continue; fi
      vs=-
      [[ -n ${ING_OF[1]:-} && ${ING_OF[1]} != 0 ]] && vs=$(ratio "${ING_OF[$n]}" "${ING_OF[1]}")x
      printf '  %-9s %10s %7s %11s  %s\n' "$n" "${ING_OF[$n]}" "$vs" "${CPU_OF[$n]}" "${INOTE_OF[$n]}"
    done
    if [[ -n ${ING_OF[1]:-} && -n ${ING_OF[$SOURCES]:-} && ${ING_OF[1]} != 0 ]]; then
      r=$(ratio "${ING_OF[$SOURCES]}" "${ING_OF[1]}")
      targets+=("$SOURCES sources >= 0.8x 1 source: ${r}x $(verdict "$r" 0.8 '>=')")
    fi
  fi
  if [[ -n ${WANT[memory]:-} ]]; then
    echo
    echo "memory after $MEM_MSGS messages (RssAnon of the server from /proc/PID/status, ${RSS_WAIT}s after ingest settled)"
    printf '  %-9s %12s  %s\n' sources 'RssAnon MiB' notes
    for n in 1 "$SOURCES"; do
      printf '  %-9s %12s  %s\n' "$n" "${RSS_OF[$n]:--}" "${MEMNOTE_OF[$n]:-${NOTE_OF[memory-$n]:-not run}}"
    done
    [[ -n ${RSS_OF[1]:-} ]] && targets+=("RssAnon after $MEM_MSGS (1 source) <= $MEM_TARGET_MB MiB: ${RSS_OF[1]} MiB $(verdict "${RSS_OF[1]}" "$MEM_TARGET_MB" '<=')")
    [[ -n ${RSS_OF[$SOURCES]:-} ]] && targets+=("($SOURCES sources: ${RSS_OF[$SOURCES]} MiB $(verdict "${RSS_OF[$SOURCES]}" "$MEM_TARGET_MB" '<='))")
  fi
  if [[ -n ${WANT[reads]:-} ]]; then
    echo
    echo "reads from the disk log ($MEM_MSGS messages of source $SRC1 appended; cold = after a restart$( ((CAN_DROP)) && echo " with the page cache dropped"), warm = median (min – max) of repeats)"
    printf '  %-50s %9s  %-28s  %s\n' request 'cold ms' 'warm ms' result
    for k in read read-desc dump; do
      case $k in
        read) q="/api/v1/read/$SRC1?limit=1000" ;;
        read-desc) q="/api/v1/read/$SRC1?limit=1000&descending=true" ;;
        dump) q="/logs/app:$SRC1?recent=$RECENT&follow=false" ;;
      esac
      printf '  %-50s %9s  %-28s  %s\n' "$q" "${COLD_OF[$k]:--}" "${WARM_OF[$k]:--}" "${RES_OF[$k]:-${NOTE_OF[reads]:-not run}}"
    done
    ((${#RESTART_NOTES[@]})) && echo "  restarts: $(IFS=';'; echo "${RESTART_NOTES[*]}" | sed 's/;/; /g')"
    [[ -n ${NOTE_OF[reads]:-} && -n ${COLD_OF[read]:-} ]] && echo "  ${NOTE_OF[reads]}"
  fi
  if [[ -n ${WANT[catchup]:-} ]]; then
    echo
    echo "drain catch-up: $CATCHUP_MSGS messages ingested while the drain's receiver was down, then the receiver (null sink) up"
    if [[ -n $CU_ROW ]]; then
      read -r bl dl <<<"$CU_ROW"
      printf '  %-30s %10s\n' 'backlog ingest msg/s' "$bl"
      printf '  %-30s %10s  (%sx the backlog ingest' 'delivered msg/s (at the sink)' "$dl" "$(ratio "$dl" "$bl")"
      [[ -n ${ING_OF[1]:-} ]] && printf ', %sx sources-1 ingest' "$(ratio "$dl" "${ING_OF[1]}")"
      [[ -n $LAST_INGEST ]] && printf ', %sx ingest.sh sluice-disk of %s' "$(ratio "$dl" "$LAST_INGEST")" "$LAST_INGEST_AT"
      echo ")"
      echo "  ${NOTE_OF[catchup]}"
    else
      echo "  ${NOTE_OF[catchup]:-not run}"
    fi
  fi
  if ((${#targets[@]})); then
    echo
    printf 'targets: %s' "${targets[0]}"
    for x in "${targets[@]:1}"; do printf '; %s' "$x"; done
    echo
  fi
} | tee "$WORK/report.txt"
mkdir -p "$BENCH/out"
cp "$WORK/report.txt" "$BENCH/out/log-last.txt"
exit "$FAILED"
