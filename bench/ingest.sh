#!/usr/bin/env bash
# bench/ingest.sh — syslog ingest throughput of sluice against its peers, in one run.
#
# Builds sluice (release), then drives each receiver in turn with loggen
# (syslog-ng's load generator) sending RFC 5424, octet-counted, over TCP on
# 127.0.0.1: SIZE-byte messages, CONNECTIONS connections, DURATION seconds,
# as fast as the receiver takes them. Receivers:
#
#   null-sink  bench/null_sink.py: reads and discards (the ceiling of this box)
#   rsyslog    imptcp -> omfile
#   syslog-ng  syslog() source -> file(), flags(flow-control)
#   sluice-disk  `sluice server --log-backend disk`: every message appended to
#                the durable on-disk log (default [log] settings), one live
#                `GET /logs` subscriber attached
#   sluice-mem   the same with `--log-backend memory`
#
# For each it prints receiver-side messages/s (messages that arrived, counted
# at the receiver, over the time from loggen's start to the last arrival),
# sluice(disk)'s ratio to it, the server's CPU-seconds per million messages,
# and for sluice its drops, log appends and anonymous memory; then the
# targets sluice(disk) >= 0.9x sluice(memory) and >= 1.0x rsyslog. Each
# receiver starts after a `sync`. See bench/README.md.
#
# Usage: bench/ingest.sh [--only null,rsyslog,syslog-ng,sluice] [--rounds N] [--no-build] [--keep]
#        (sluice = sluice-disk,sluice-mem; each can be chosen alone)
# Env:   DURATION=10 CONNECTIONS=2 SIZE=256 ONLY=... BUILD=1 KEEP=0
#        ROUNDS=1 (run every receiver N times, interleaved; rows show the median)
#        RATE=100000000 (per connection; effectively unlimited)
#        SLUICE_BIN=target/release/sluice SLUICE_ARGS="extra server flags"
#        MAX_LINES_PER_SECOND=0 (the noisy-neighbour limit; 0 is off, a huge
#        value measures the limiter's cost with nothing dropped)
#        SLUICE_KEEP_ALL=0 (1: raise --recent-max-per-source and --memory-mb
#        to SLUICE_RECENT_MAX=100000000 and SLUICE_MEMORY_MB=(auto:
#        min(16384, MemAvailable/2)) so the log's index keeps the whole run)
#        PEERS_DIR=bench/out/peers (where syslog-ng [and rsyslog] are unpacked)
#        SETTLE=1.5 (s without progress that counts as "caught up"), MAX_SETTLE=60
set -euo pipefail
LOG_TAG=ingest
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # REPO BENCH, the common knobs, helpers

ONLY=${ONLY:-null,rsyslog,syslog-ng,sluice-disk,sluice-mem}
MAX_LINES_PER_SECOND=${MAX_LINES_PER_SECOND:-0}
ROUNDS=${ROUNDS:-1}
SLUICE_RECENT_MAX=${SLUICE_RECENT_MAX:-100000000}
SLUICE_MEMORY_MB=${SLUICE_MEMORY_MB:-}

while (($#)); do
  case $1 in
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
    --rounds=*) ROUNDS=${1#--rounds=}; shift ;;
    --no-build) BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "ingest.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# --- selection -------------------------------------------------------------
declare -A WANT=()
IFS=', ' read -r -a _sel <<<"$ONLY"
for r in "${_sel[@]}"; do
  case $r in
    null|null-sink) WANT[null]=1 ;;
    rsyslog) WANT[rsyslog]=1 ;;
    syslog-ng|syslogng) WANT[syslog-ng]=1 ;;
    sluice) WANT[sluice-disk]=1 WANT[sluice-mem]=1 ;;
    sluice-disk|disk) WANT[sluice-disk]=1 ;;
    sluice-mem|sluice-memory|memory|mem) WANT[sluice-mem]=1 ;;
    all) WANT[null]=1 WANT[rsyslog]=1 WANT[syslog-ng]=1 WANT[sluice-disk]=1 WANT[sluice-mem]=1 ;;
    '') ;;
    *) die "unknown receiver '$r' (known: null, rsyslog, syslog-ng, sluice, sluice-disk, sluice-mem)" ;;
  esac
done
((${#WANT[@]})) || die "nothing selected"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "ROUNDS must be a positive integer"
check_common
bench_init ingest

# --- receivers ------------------------------------------------------------------
# Each start_<r> starts the server in the foreground (as a child of this
# script), sets RCV_PID and RCV_PORT and returns 0 once it listens, or sets
# RCV_NOTE and returns 1. probe_<r> prints a number that grows while
# messages arrive (cheap; polled); count_<r> prints messages received.

start_null() {
  RCV_PORT=$(free_port)
  python3 "$BENCH/null_sink.py" 127.0.0.1 "$RCV_PORT" "$RUN/status" >"$RUN/server.log" 2>&1 &
  RCV_PID=$!
  PIDS+=("$RCV_PID")
  wait_port "$RCV_PORT" "$RCV_PID" 10 || { RCV_NOTE="null sink did not start"; return 1; }
}
probe_null() { awk '{print $2}' "$RUN/status" 2>/dev/null || echo 0; }
count_null() { awk '{print $1}' "$RUN/status" 2>/dev/null || echo 0; }

start_rsyslog() {
  RCV_PORT=$(free_port)
  mkdir -p "$RUN/work"
  cat >"$RUN/rsyslog.conf" <<EOF
global(workDirectory="$RUN/work")
module(load="imptcp")
input(type="imptcp" address="127.0.0.1" port="$RCV_PORT")
action(type="omfile" file="$RUN/out.log")
EOF
  local args=(-n -f "$RUN/rsyslog.conf" -i "$RUN/rsyslogd.pid")
  [[ -n $RS_MODDIR ]] && args+=(-M "$RS_MODDIR")
  env ${RS_LIBPATH:+LD_LIBRARY_PATH="$RS_LIBPATH"} "$RSYSLOGD" "${args[@]}" >"$RUN/server.log" 2>&1 &
  RCV_PID=$!
  PIDS+=("$RCV_PID")
  wait_port "$RCV_PORT" "$RCV_PID" 15 || { RCV_NOTE="rsyslogd did not start"; return 1; }
}
probe_rsyslog() { stat -c %s "$RUN/out.log" 2>/dev/null || echo 0; }
count_rsyslog() { if [[ -f $RUN/out.log ]]; then wc -l <"$RUN/out.log"; else echo 0; fi; }

start_syslog_ng() {
  RCV_PORT=$(free_port)
  # Defaults except: a window that is not clamped (log-iw-size is split over
  # max-connections), a destination fifo that holds it, and flow-control so
  # that a full destination pushes back on the sender instead of dropping
  # (what rsyslog and sluice's ingest do too).
  cat >"$RUN/syslog-ng.conf" <<EOF
@version: ${SNG_MODDIR##*/}
options { stats-freq(0); };
source s_net { syslog(ip("127.0.0.1") port($RCV_PORT) transport("tcp")
                      max-connections(10) log-iw-size(10000)); };
destination d_file { file("$RUN/out.log" log-fifo-size(20000)); };
log { source(s_net); destination(d_file); flags(flow-control); };
EOF
  # Started directly (not through a shell function) so that $! is syslog-ng itself.
  env LD_LIBRARY_PATH="$SNG_LIBPATH" "$SNG_BIN" -F -e --no-caps --module-path="$SNG_MODDIR" -f "$RUN/syslog-ng.conf" \
    -R "$RUN/syslog-ng.persist" -p "$RUN/syslog-ng.pid" -c "$RUN/syslog-ng.ctl" \
    >"$RUN/server.log" 2>&1 &
  RCV_PID=$!
  PIDS+=("$RCV_PID")
  wait_port "$RCV_PORT" "$RCV_PID" 15 || { RCV_NOTE="syslog-ng did not start"; return 1; }
}
probe_syslog_ng() { probe_rsyslog; }
count_syslog_ng() { count_rsyslog; }

# sluice: `sluice server --http A --syslog A --data-dir D --log-backend B`
# with its default [log] settings (disk: segments in D/log, fsync every
# 500 ms, 4096 MiB of segments, the newest 100,000 per source indexed;
# memory: 256 MiB of history) — its real job, in steady state — and a
# `curl -N /logs` live subscriber. "appended" is sluice_log_appended_total:
# every received message must reach the log.
# SLUICE_KEEP_ALL=1 raises --recent-max-per-source and --memory-mb so the
# log's index (and the memory log) keeps the whole run.
SLUICE_KEEP_ALL=${SLUICE_KEEP_ALL:-0}
SLUICE_BACKEND=
start_sluice() {
  # After a failed build an old binary would measure old code: report instead.
  [[ -z $SLUICE_BUILD_NOTE ]] || { RCV_NOTE=$SLUICE_BUILD_NOTE; return 1; }
  [[ -x $SLUICE_BIN ]] || { RCV_NOTE="no binary at $SLUICE_BIN"; return 1; }
  RCV_PORT=$(free_port)
  SLUICE_HTTP=$(free_port)
  local mem=${SLUICE_MEMORY_MB:-$(($(mem_available_mb) / 2))}
  ((mem > 16384)) && mem=16384
  local args=(server --http "127.0.0.1:$SLUICE_HTTP" --syslog "127.0.0.1:$RCV_PORT"
    --data-dir "$RUN/data" --log-backend "$SLUICE_BACKEND"
    --max-lines-per-second "$MAX_LINES_PER_SECOND") # 0: one app at full speed, no noisy-neighbour cap
  ((SLUICE_KEEP_ALL)) && args+=(--recent-max-per-source "$SLUICE_RECENT_MAX" --memory-mb "$mem")
  # shellcheck disable=SC2206
  args+=($SLUICE_ARGS)
  echo "$SLUICE_BIN ${args[*]}" >"$RUN/server.cmd"
  "$SLUICE_BIN" "${args[@]}" >"$RUN/server.log" 2>&1 &
  RCV_PID=$!
  PIDS+=("$RCV_PID")
  if ! wait_port "$RCV_PORT" "$RCV_PID" 20 || ! wait_port "$SLUICE_HTTP" "$RCV_PID" 5; then
    if ! kill -0 "$RCV_PID" 2>/dev/null &&
      grep -qiE "(unexpected|unrecognized|unknown).*--(log-backend|recent-max-per-source|memory-mb)" "$RUN/server.log"; then
      RCV_NOTE="this sluice has no --log-backend/--memory-mb (a build from before the disk log?)"
    else
      RCV_NOTE="sluice did not start (its log is above)"
    fi
    return 1
  fi
  local i
  for ((i = 0; i < 50; i++)); do [[ -n $(metrics) ]] && break; sleep 0.1; done
  [[ -n $(metrics) ]] || log "warning: sluice /metrics is not answering"
  curl -sN "http://127.0.0.1:$SLUICE_HTTP/logs" >/dev/null 2>"$RUN/subscriber.err" &
  SUB_PID=$!
  PIDS+=("$SUB_PID")
  sleep 0.3
  kill -0 "$SUB_PID" 2>/dev/null || SLUICE_EXTRA_NOTE+="${SLUICE_EXTRA_NOTE:+, }/logs subscriber exited at once"
}
start_sluice_disk() { SLUICE_BACKEND=disk start_sluice; }
start_sluice_mem() { SLUICE_BACKEND=memory start_sluice; }
probe_sluice() {
  local m
  m=$(metrics)
  echo "$(metric_sum "$m" sluice_ingress_envelopes_total)/$(metric_sum "$m" sluice_log_appended_total)"
}
probe_sluice_disk() { probe_sluice; }
probe_sluice_mem() { probe_sluice; }
count_sluice() { local v; v=$(metric_sum "$(metrics)" sluice_ingress_envelopes_total 'protocol="syslog_tcp"'); echo "${v:-0}"; }
count_sluice_disk() { count_sluice; }
count_sluice_mem() { count_sluice; }
sluice_notes() { # received -> drops, log appends, stream egress, memory (after the run, before stopping)
  local recv=$1 m q other st eg notes= ents lb rss
  m=$(metrics)
  if [[ -z $m ]]; then echo "metrics unavailable"; return; fi
  printf '%s\n' "$m" >"$RUN/metrics.txt" # kept with KEEP=1
  [[ -n $(metric_sum "$m" sluice_ingress_envelopes_total 'protocol="syslog_tcp"') ]] ||
    notes="no sluice_ingress_envelopes_total{protocol=\"syslog_tcp\"}!"
  q=$(metric_sum "$m" sluice_drops_total 'reason="queue_full"')
  other=$(awk '$1 ~ /^sluice_drops_total\{/ && $1 !~ /queue_full/ && $2 + 0 > 0 {
      r = $1; sub(/.*reason="/, "", r); sub(/".*/, "", r); s[r] += $2 }
    END { for (r in s) printf " %s=%.0f", r, s[r] }' <<<"$m")
  st=$(metric_sum "$m" sluice_log_appended_total)
  eg=$(metric_sum "$m" sluice_egress_envelopes_total 'consumer="stream"')
  ents=$(metric_sum "$m" sluice_log_entries)
  lb=$(metric_sum "$m" sluice_log_bytes)
  if [[ -z $st ]]; then st="?(no sluice_log_appended_total)"
  elif ((st == recv)); then st+=" (all)"
  else st+=" (recv-appended=$((recv - st)))"; fi
  notes+="${notes:+ }drops=${q:-0}${other:+ (${other# })} appended=$st streamed=${eg:-?}"
  [[ -n $ents ]] && notes+=" indexed=$ents"
  [[ -n $lb ]] && notes+=" log=$((lb >> 20))MiB"
  rss=$(awk '/^RssAnon:/ {print int($2 / 1024)}' "/proc/$RCV_PID/status" 2>/dev/null || true)
  [[ -n $rss ]] && notes+=" RssAnon=${rss}MiB"
  if [[ -n ${SUB_PID:-} ]] && ! kill -0 "$SUB_PID" 2>/dev/null; then notes+=" subscriber-died"; fi
  echo "$notes"
}

# --- one run ---------------------------------------------------------------------
declare -A RATE_OF=() CPU_OF=() NOTE_OF=() RECV_OF=() SENT_OF=() ELAPSED_OF=() LGRATE_OF=()
FAILED=0

run_one() { # receiver-name; results under the key "receiver/round"
  local r=$1/$ROUND fn=${1//-/_}
  RUN=$WORK/$1
  ((ROUNDS == 1)) || RUN+=-$ROUND
  mkdir -p "$RUN"
  RCV_NOTE= RCV_PID= RCV_PORT= SUB_PID= SLUICE_EXTRA_NOTE=
  # Every receiver starts with no dirty pages left by the one before (the
  # kernel writing back a peer's gigabytes would load the next run).
  sync
  log "$r: starting"
  if ! "start_$fn"; then
    log "$r: $RCV_NOTE"
    tail_log "$RUN/server.log"
    NOTE_OF[$r]=$RCV_NOTE
    FAILED=1
    [[ -n $RCV_PID ]] && stop_pid "$RCV_PID"
    return 0
  fi

  log "$r: listening on 127.0.0.1:$RCV_PORT (pid $RCV_PID, $(cat "/proc/$RCV_PID/comm" 2>/dev/null)); loggen ${DURATION}s x $CONNECTIONS conn x ${SIZE}B"
  local known=()
  [[ -n $SUB_PID ]] && known+=("$SUB_PID")
  drive_loggen "$r" "$RCV_PORT" "$RCV_PID" "probe_$fn" "${known[@]}"

  local recv sent lgrate notes= t0=$DL_T0 t_last=$DL_T_LAST
  ((DL_OTHER_PCT < 5)) || notes+="[other load ${DL_OTHER_PCT}% of a CPU] "
  kill -0 "$RCV_PID" 2>/dev/null || notes+="server died! "
  recv=$("count_$fn")
  sent=$DL_SENT
  lgrate=$DL_LGRATE
  [[ $fn == sluice_* ]] && notes+="$(sluice_notes "$recv") "
  [[ -n ${SLUICE_EXTRA_NOTE:-} && $fn == sluice_* ]] && notes+="[$SLUICE_EXTRA_NOTE] "
  if ((sent > 0 && recv != sent)); then notes+="recv-sent=$((recv - sent)) "; fi

  [[ -n $SUB_PID ]] && stop_pid "$SUB_PID"
  stop_pid "$RCV_PID" 10
  rm -rf "$RUN/out.log" "$RUN/data" # can be GBs

  RECV_OF[$r]=$recv
  SENT_OF[$r]=$sent
  LGRATE_OF[$r]=$lgrate
  ELAPSED_OF[$r]=$(awk -v a="$t0" -v b="$t_last" 'BEGIN {printf "%.3f", (b - a) / 1e6}')
  RATE_OF[$r]=$(awk -v n="$recv" -v a="$t0" -v b="$t_last" 'BEGIN {printf "%.0f", (b > a) ? n / ((b - a) / 1e6) : 0}')
  CPU_OF[$r]=$(awk -v c="$DL_CPU" -v t="$CLK_TCK" -v n="$recv" 'BEGIN {printf "%.2f", (n > 0) ? (c / t) / (n / 1e6) : 0}')
  NOTE_OF[$r]=${notes% }
  if ((recv == 0)); then FAILED=1; log "$r: nothing arrived"; tail_log "$RUN/server.log"; fi
  log "$r: received $recv (loggen sent $sent) in ${ELAPSED_OF[$r]}s -> ${RATE_OF[$r]} msg/s"
  sleep 1 # let writeback of the deleted file and sockets in TIME_WAIT settle
}

# --- main ----------------------------------------------------------------------------
[[ -n ${WANT[sluice-disk]:-}${WANT[sluice-mem]:-} ]] && build_sluice

setup_syslog_ng # loggen comes from here, whatever is selected
[[ -n ${WANT[rsyslog]:-} ]] && setup_rsyslog

VERSIONS="loggen/syslog-ng $(sng_version)"
[[ -n ${WANT[rsyslog]:-} ]] &&
  VERSIONS+=", rsyslog $(env ${RS_LIBPATH:+LD_LIBRARY_PATH="$RS_LIBPATH"} "$RSYSLOGD" -v 2>/dev/null | awk 'NR == 1 {print $2}')"
[[ -n ${WANT[sluice-disk]:-}${WANT[sluice-mem]:-} && -x $SLUICE_BIN ]] && VERSIONS+=", sluice $SLUICE_BIN"

ORDER=()
for r in null rsyslog syslog-ng sluice-disk sluice-mem; do [[ -n ${WANT[$r]:-} ]] && ORDER+=("$r"); done

BUSY=$(busy_pct)
log "CPUs: $(nproc), busy before the runs: ${BUSY}%"
((BUSY < 10)) || log "warning: the machine is not idle (${BUSY}% busy); numbers will be noisy"

for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  ((ROUNDS == 1)) || log "round $ROUND of $ROUNDS"
  for r in "${ORDER[@]}"; do run_one "$r"; done
done

# Each receiver's row is its median round by msgs/s (the lower of the two
# middle ones for an even count); with ROUNDS > 1 the notes list every round.
use_round() { # receiver round
  local f
  for f in RATE_OF CPU_OF NOTE_OF RECV_OF SENT_OF ELAPSED_OF LGRATE_OF; do
    local -n arr=$f
    arr[$1]=${arr[$1/$2]:-}
    unset -n arr
  done
}
for r in "${ORDER[@]}"; do
  mapfile -t ranked < <(for ((i = 1; i <= ROUNDS; i++)); do
    [[ -z ${RATE_OF[$r/$i]:-} ]] || echo "${RATE_OF[$r/$i]} $i"
  done | sort -n)
  if ((${#ranked[@]} == 0)); then use_round "$r" 1; continue; fi
  pick=${ranked[$(((${#ranked[@]} - 1) / 2))]##* }
  use_round "$r" "$pick"
  if ((ROUNDS > 1)); then
    all=$(for ((i = 1; i <= ROUNDS; i++)); do printf '%s,' "${RATE_OF[$r/$i]:-failed}"; done)
    NOTE_OF[$r]="[rounds ${all%,}; median: round $pick]${NOTE_OF[$r]:+ ${NOTE_OF[$r]}}"
  fi
done

# --- report ----------------------------------------------------------------------------
label() { [[ $1 == null ]] && echo null-sink || echo "$1"; }
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "MET" : "NOT MET" }'; }
sl=${RATE_OF[sluice-disk]:-}
{
  echo
  echo "sluice ingest benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git_rev), $(nproc) CPUs"
  echo "$VERSIONS"
  echo "loggen: RFC 5424 octet-counted over TCP, ${SIZE} B messages, $CONNECTIONS connections, ${DURATION} s, unthrottled$( ((ROUNDS == 1)) || echo "; $ROUNDS rounds, each row its median round")"
  echo "msgs/s = messages counted at the receiver / (loggen start -> last arrival); CPUs ${BUSY}% busy before the runs"
  echo
  printf '%-11s %10s %14s %11s  %s\n' receiver msgs/s 'ratio(disk/x)' cpu-s/Mmsg notes
  for r in "${ORDER[@]}"; do
    rate=${RATE_OF[$r]:-}
    if [[ -z $rate ]]; then
      printf '%-11s %10s %14s %11s  %s\n' "$(label "$r")" - - - "${NOTE_OF[$r]:-not run}"
      continue
    fi
    ratio=-
    [[ -n $sl && $rate != 0 ]] && ratio=$(ratio_of "$sl" "$rate")x
    printf '%-11s %10s %14s %11s  %s\n' "$(label "$r")" "$rate" "$ratio" "${CPU_OF[$r]}" \
      "recv=${RECV_OF[$r]} sent=${SENT_OF[$r]} (loggen ${LGRATE_OF[$r]}/s) ${ELAPSED_OF[$r]}s${NOTE_OF[$r]:+ ${NOTE_OF[$r]}}"
  done
  t=()
  if [[ -n $sl && $sl != 0 && -n ${RATE_OF[sluice-mem]:-} && ${RATE_OF[sluice-mem]} != 0 ]]; then
    v=$(ratio_of "$sl" "${RATE_OF[sluice-mem]}")
    t+=("sluice(disk) >= 0.9x sluice(memory): ${v}x $(verdict "$v" 0.9)")
  fi
  if [[ -n $sl && $sl != 0 && -n ${RATE_OF[rsyslog]:-} && ${RATE_OF[rsyslog]} != 0 ]]; then
    v=$(ratio_of "$sl" "${RATE_OF[rsyslog]}")
    t+=("sluice(disk) >= 1.0x rsyslog: ${v}x $(verdict "$v" 1.0)")
  fi
  if ((${#t[@]})); then
    echo
    printf 'targets: %s' "${t[0]}"
    for x in "${t[@]:1}"; do printf '; %s' "$x"; done
    echo
  fi
} | tee "$WORK/report.txt"
mkdir -p "$BENCH/out"
cp "$WORK/report.txt" "$BENCH/out/ingest-last.txt"
exit "$FAILED"
