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
#   sluice     `sluice server`: every message into the recent store, one live
#              `GET /logs` subscriber attached
#
# For each it prints receiver-side messages/s (messages that arrived, counted
# at the receiver, over the time from loggen's start to the last arrival),
# sluice's ratio to it, the server's CPU-seconds per million messages, and
# for sluice its drops and store entries. See bench/README.md.
#
# Usage: bench/ingest.sh [--only null,rsyslog,syslog-ng,sluice] [--no-build] [--keep]
# Env:   DURATION=10 CONNECTIONS=2 SIZE=256 ONLY=... BUILD=1 KEEP=0
#        RATE=100000000 (per connection; effectively unlimited)
#        SLUICE_BIN=target/release/sluice SLUICE_ARGS="extra server flags"
#        SLUICE_RECENT_MAX=100000000 SLUICE_MEMORY_MB=(auto: min(16384, MemAvailable/2))
#        PEERS_DIR=bench/out/peers (where syslog-ng [and rsyslog] are unpacked)
#        SETTLE=1.5 (s without progress that counts as "caught up"), MAX_SETTLE=60
set -euo pipefail
export LC_ALL=C # a '.' in $EPOCHREALTIME and in awk's numbers

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/bench

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-2}
SIZE=${SIZE:-256}
RATE=${RATE:-100000000}
ONLY=${ONLY:-null,rsyslog,syslog-ng,sluice}
BUILD=${BUILD:-1}
KEEP=${KEEP:-0}
SETTLE=${SETTLE:-1.5}
MAX_SETTLE=${MAX_SETTLE:-60}
PEERS_DIR=${PEERS_DIR:-$BENCH/out/peers}
SLUICE_BIN=${SLUICE_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/sluice}
SLUICE_ARGS=${SLUICE_ARGS:-}
SLUICE_RECENT_MAX=${SLUICE_RECENT_MAX:-100000000}
SLUICE_MEMORY_MB=${SLUICE_MEMORY_MB:-}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while (($#)); do
  case $1 in
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --no-build) BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "ingest.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { printf '[ingest %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- selection -------------------------------------------------------------
declare -A WANT=()
IFS=', ' read -r -a _sel <<<"$ONLY"
for r in "${_sel[@]}"; do
  case $r in
    null|null-sink) WANT[null]=1 ;;
    rsyslog) WANT[rsyslog]=1 ;;
    syslog-ng|syslogng) WANT[syslog-ng]=1 ;;
    sluice) WANT[sluice]=1 ;;
    all) WANT[null]=1 WANT[rsyslog]=1 WANT[syslog-ng]=1 WANT[sluice]=1 ;;
    '') ;;
    *) die "unknown receiver '$r' (known: null, rsyslog, syslog-ng, sluice)" ;;
  esac
done
((${#WANT[@]})) || die "nothing selected"
[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "DURATION must be a positive integer"
command -v python3 >/dev/null || die "python3 is required (null sink, port picking)"
command -v curl >/dev/null || die "curl is required"

# --- process bookkeeping and cleanup ----------------------------------------
PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-ingest.XXXXXX")
stop_pid() { # pid [grace-seconds]
  local pid=$1 grace=${2:-5} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do stop_pid "$pid" 3; done
  if [[ $KEEP == 1 ]]; then log "kept work dir $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$WORK" # every path below is absolute; nothing stray lands in the checkout

# --- small helpers ----------------------------------------------------------
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port pid timeout-s -> 0 when listening, 1 if pid died / timeout
  local port=$1 pid=$2 deadline=$(($(now_us) + $3 * 1000000))
  while (($(now_us) < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    port_open "$port" && return 0
    sleep 0.1
  done
  return 1
}
cpu_ticks() { # utime+stime of a live process, in clock ticks
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }
  awk '{print $12 + $13}' <<<"$stat"
}
CLK_TCK=$(getconf CLK_TCK)
# user+nice+system+steal; irq/softirq time is left out: loopback TCP is processed
# there, so it belongs to the run, and the kernel charges it to no process.
machine_busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $9}' /proc/stat; }
children_ticks() { # CPU of this shell's reaped descendants (loggen, probes), in ticks
  # `times` must run in this shell, not in a $(...) subshell: call as `children_ticks VAR`.
  times >"$WORK/.times"
  printf -v "$1" '%s' "$(awk -v hz="$CLK_TCK" 'NR == 2 { s = 0
    for (i = 1; i <= NF; i++) { split($i, ms, "m"); sub(/s$/, "", ms[2]); s += ms[1] * 60 + ms[2] }
    printf "%.0f", s * hz }' "$WORK/.times")"
}
mem_available_mb() { awk '/^MemAvailable:/ {print int($2/1024)}' /proc/meminfo; }
tail_log() { [[ -f $1 ]] && tail -n "${2:-15}" "$1" | sed 's/^/    | /' >&2 || true; }

# --- peers: rsyslog and syslog-ng unpacked from Debian packages ---------------
# syslog-ng-core conflicts with rsyslog as a package, so it is never installed:
# its .deb (and any library it needs that is not installed) is fetched with
# `apt-get download` and unpacked with `dpkg -x` under $PEERS_DIR. Same for
# rsyslog when rsyslogd is not on PATH. Nothing is installed, no daemon started.
apt_download() { # dir pkg...  (apt-get update only when the lists lack a package)
  local dir=$1; shift
  local sudo=
  ((EUID == 0)) || sudo="sudo -n"
  if ! apt-cache show "$@" >/dev/null 2>&1; then
    log "apt lists lack $*; running apt-get update"
    $sudo apt-get update -qq >&2 || die "apt-get update failed"
  fi
  (cd "$dir" && apt-get download -q "$@" >&2 2>"$dir/apt.err") ||
    { cat "$dir/apt.err" >&2; die "apt-get download $* failed"; }
}
missing_lib_deps() { # pkg -> names of its direct lib* Depends that are not installed
  apt-cache depends "$1" 2>/dev/null |
    awk '$1 ~ /^\|?Depends:$/ && $2 !~ /^</ {print $2}' | grep '^lib' | sort -u |
    while read -r dep; do
      [[ $(dpkg-query -W -f='${Status}' "$dep" 2>/dev/null) == "install ok installed" ]] || echo "$dep"
    done
}
unpack_pkg_tree() { # pkg dest-root
  local pkg=$1 root=$2 dl deb
  [[ -f $root/.complete ]] && return 0
  command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
    die "$pkg is needed but this is not a Debian-like system (no apt-get/dpkg)"
  rm -rf "$root"
  mkdir -p "$root"
  dl=$(mktemp -d "$WORK/apt.XXXXXX")
  chmod 0777 "$dl" # lets apt's sandbox user write there
  local pkgs=("$pkg")
  mapfile -t -O 1 pkgs < <(missing_lib_deps "$pkg")
  log "fetching ${pkgs[*]} into $root"
  apt_download "$dl" "${pkgs[@]}"
  for deb in "$dl"/*.deb; do dpkg -x "$deb" "$root"; done
  touch "$root/.complete"
}
lib_path_of() { # root -> LD_LIBRARY_PATH with every dir holding shared objects (not module dirs)
  find "$1" -name '*.so*' \( -type f -o -type l \) -printf '%h\n' 2>/dev/null |
    awk -v root="$1/" 'substr($0, length(root) + 1) !~ /(^|\/)(syslog-ng\/[0-9][^\/]*|rsyslog)(\/|$)/' |
    sort -u | paste -sd: -
}
check_ldd() { # binary libpath -> dies listing unresolved libraries
  local missing
  missing=$(LD_LIBRARY_PATH=$2 ldd "$1" 2>/dev/null | awk '/not found/ {print $1}' | paste -sd' ' -)
  [[ -z $missing ]] || die "$1: unresolved libraries: $missing (remove $PEERS_DIR and retry, or install them)"
}

SNG_ROOT=$PEERS_DIR/syslog-ng
setup_syslog_ng() { # sets SNG_BIN LOGGEN_BIN SNG_MODDIR SNG_LIBPATH
  unpack_pkg_tree syslog-ng-core "$SNG_ROOT"
  SNG_BIN=$SNG_ROOT/usr/sbin/syslog-ng
  LOGGEN_BIN=$SNG_ROOT/usr/bin/loggen
  SNG_MODDIR=$(find "$SNG_ROOT/usr/lib/syslog-ng" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' | sort -V | tail -n1)
  SNG_LIBPATH=$(lib_path_of "$SNG_ROOT")
  [[ -x $SNG_BIN && -x $LOGGEN_BIN && -d $SNG_MODDIR/loggen ]] ||
    die "unpacked syslog-ng under $SNG_ROOT is incomplete; remove it and retry"
  check_ldd "$SNG_BIN" "$SNG_LIBPATH"
  check_ldd "$LOGGEN_BIN" "$SNG_LIBPATH"
}
sng_env() { env LD_LIBRARY_PATH="$SNG_LIBPATH" SYSLOGNG_PREFIX="$SNG_ROOT/usr" "$@"; }

setup_rsyslog() { # sets RSYSLOGD RS_MODDIR RS_LIBPATH
  RS_LIBPATH=
  if RSYSLOGD=$(command -v rsyslogd || ls /usr/sbin/rsyslogd 2>/dev/null); then
    RS_MODDIR=
    return 0
  fi
  local root=$PEERS_DIR/rsyslog
  unpack_pkg_tree rsyslog "$root"
  RSYSLOGD=$root/usr/sbin/rsyslogd
  RS_MODDIR=$(dirname "$(find "$root" -name imptcp.so | head -n1)")
  RS_LIBPATH=$(lib_path_of "$root")
  check_ldd "$RSYSLOGD" "$RS_LIBPATH"
}

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

# sluice: `sluice server --http A --syslog A --data-dir D` with its default
# store limits (the newest 100,000 per source within 512 MiB: its real job,
# in steady state), and a `curl -N /logs` live subscriber. "stored" is
# sluice_store_appended_total: every received message must reach the store.
# SLUICE_KEEP_ALL=1 raises the limits so the store keeps the whole run.
SLUICE_HTTP=
SLUICE_STORE_FLAGS=${SLUICE_KEEP_ALL:-0}
metrics() { curl -sf --max-time 2 "http://127.0.0.1:$SLUICE_HTTP/metrics" 2>/dev/null || true; }
metric_sum() { # text name [label-substring] -> sum over matching series ("" if none)
  awk -v name="$2" -v sel="${3:-}" '
    $1 ~ /^#/ { next }
    { series = $1; base = series; sub(/\{.*/, "", base) }
    base == name && (sel == "" || index(series, sel)) { s += $2; n++ }
    END { if (n) printf "%.0f\n", s }' <<<"$1"
}
start_sluice() {
  # After a failed build an old binary would measure old code: report instead.
  [[ -z $SLUICE_BUILD_NOTE ]] || { RCV_NOTE=$SLUICE_BUILD_NOTE; return 1; }
  [[ -x $SLUICE_BIN ]] || { RCV_NOTE="no binary at $SLUICE_BIN"; return 1; }
  RCV_PORT=$(free_port)
  SLUICE_HTTP=$(free_port)
  local mem=${SLUICE_MEMORY_MB:-$(($(mem_available_mb) / 2))}
  ((mem > 16384)) && mem=16384
  local args=(server --http "127.0.0.1:$SLUICE_HTTP" --syslog "127.0.0.1:$RCV_PORT"
    --data-dir "$RUN/data")
  ((SLUICE_STORE_FLAGS)) && args+=(--recent-max-per-source "$SLUICE_RECENT_MAX" --memory-budget-mb "$mem")
  # shellcheck disable=SC2206
  args+=($SLUICE_ARGS)
  echo "$SLUICE_BIN ${args[*]}" >"$RUN/server.cmd"
  "$SLUICE_BIN" "${args[@]}" >"$RUN/server.log" 2>&1 &
  RCV_PID=$!
  PIDS+=("$RCV_PID")
  if ! wait_port "$RCV_PORT" "$RCV_PID" 20 || ! wait_port "$SLUICE_HTTP" "$RCV_PID" 5; then
    if ((SLUICE_STORE_FLAGS)) && ! kill -0 "$RCV_PID" 2>/dev/null &&
      grep -qiE "(unexpected|unrecognized|unknown).*--(recent-max-per-source|memory-budget-mb)" "$RUN/server.log"; then
      log "sluice rejects --recent-max-per-source/--memory-budget-mb; retrying without (store capped at its defaults)"
      SLUICE_STORE_FLAGS=0
      SLUICE_EXTRA_NOTE="store flags missing"
      start_sluice
      return
    fi
    RCV_NOTE="sluice did not start (its log is above)"
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
probe_sluice() {
  local m
  m=$(metrics)
  echo "$(metric_sum "$m" sluice_ingress_envelopes_total)/$(metric_sum "$m" sluice_store_appended_total)"
}
count_sluice() { local v; v=$(metric_sum "$(metrics)" sluice_ingress_envelopes_total 'protocol="syslog_tcp"'); echo "${v:-0}"; }
sluice_notes() { # received -> drops, store entries, stream egress (after the run, before stopping)
  local recv=$1 m q other st eg notes=
  m=$(metrics)
  if [[ -z $m ]]; then echo "metrics unavailable"; return; fi
  printf '%s\n' "$m" >"$RUN/metrics.txt" # kept with KEEP=1
  [[ -n $(metric_sum "$m" sluice_ingress_envelopes_total 'protocol="syslog_tcp"') ]] ||
    notes="no sluice_ingress_envelopes_total{protocol=\"syslog_tcp\"}!"
  q=$(metric_sum "$m" sluice_drops_total 'reason="queue_full"')
  other=$(awk '$1 ~ /^sluice_drops_total\{/ && $1 !~ /queue_full/ && $2 + 0 > 0 {
      r = $1; sub(/.*reason="/, "", r); sub(/".*/, "", r); s[r] += $2 }
    END { for (r in s) printf " %s=%.0f", r, s[r] }' <<<"$m")
  st=$(metric_sum "$m" sluice_store_appended_total)
  eg=$(metric_sum "$m" sluice_egress_envelopes_total 'consumer="stream"')
  if [[ -z $st ]]; then st="?"
  elif ((st == recv)); then st+=" (all)"
  else st+=" (recv-stored=$((recv - st)))"; fi
  notes+="${notes:+ }drops=${q:-?(no metric)}${other:+ (${other# })} stored=$st streamed=${eg:-?}"
  if [[ -n ${SUB_PID:-} ]] && ! kill -0 "$SUB_PID" 2>/dev/null; then notes+=" subscriber-died"; fi
  echo "$notes"
}

# --- one run ---------------------------------------------------------------------
declare -A RATE_OF=() CPU_OF=() NOTE_OF=() RECV_OF=() SENT_OF=() ELAPSED_OF=() LGRATE_OF=()
FAILED=0

run_one() { # receiver-name
  local r=$1 fn=${1//-/_}
  RUN=$WORK/$r
  mkdir -p "$RUN"
  RCV_NOTE= RCV_PID= RCV_PORT= SUB_PID= SLUICE_EXTRA_NOTE=${SLUICE_EXTRA_NOTE:-}
  log "$r: starting"
  if ! "start_$fn"; then
    log "$r: $RCV_NOTE"
    tail_log "$RUN/server.log"
    NOTE_OF[$r]=$RCV_NOTE
    FAILED=1
    [[ -n $RCV_PID ]] && stop_pid "$RCV_PID"
    return 0
  fi

  local cpu0 t0 t_last last cur stable_since deadline now lg_pid lg_rc=0
  cpu0=$(cpu_ticks "$RCV_PID")
  # To tell a clean run from a disturbed one: CPU used on the machine by
  # anything but the receiver, loggen, the subscriber and this script.
  local busy0 ch0 sub0=0
  busy0=$(machine_busy_ticks)
  children_ticks ch0
  [[ -n $SUB_PID ]] && sub0=$(cpu_ticks "$SUB_PID")
  log "$r: listening on 127.0.0.1:$RCV_PORT (pid $RCV_PID, $(cat "/proc/$RCV_PID/comm" 2>/dev/null)); loggen ${DURATION}s x $CONNECTIONS conn x ${SIZE}B"
  # loggen stops sending after DURATION s but exits only at its next 0.5 s
  # report tick, so its own time (and rate) is not the receiver's: the run
  # ends at the last time the receiver's count moved. Poll every 50 ms from
  # a second before the expected end until loggen has exited and the count
  # has not moved for SETTLE s (the receiver has caught up).
  t0=$(now_us)
  env LD_LIBRARY_PATH="$SNG_LIBPATH" SYSLOGNG_PREFIX="$SNG_ROOT/usr" \
    timeout -k 5 $((DURATION + 60)) "$LOGGEN_BIN" --inet --stream --syslog-proto \
    --size "$SIZE" --rate "$RATE" --interval "$DURATION" --active-connections "$CONNECTIONS" \
    127.0.0.1 "$RCV_PORT" >"$RUN/loggen.log" 2>&1 </dev/null &
  lg_pid=$!
  PIDS+=("$lg_pid")
  while kill -0 "$lg_pid" 2>/dev/null && (($(now_us) < t0 + (DURATION - 1) * 1000000)); do sleep 0.1; done

  local settle_us lg_done=0
  settle_us=$(awk -v s="$SETTLE" 'BEGIN {printf "%d", s * 1000000}')
  last=$("probe_$fn")
  t_last=$(now_us)
  stable_since=$t_last
  deadline=$((t0 + (DURATION + MAX_SETTLE) * 1000000))
  while :; do
    sleep 0.05
    cur=$("probe_$fn")
    now=$(now_us)
    if [[ $cur != "$last" ]]; then last=$cur t_last=$now stable_since=$now; fi
    if ((!lg_done)) && ! kill -0 "$lg_pid" 2>/dev/null; then
      lg_done=1
      wait "$lg_pid" || lg_rc=$?
      ((lg_rc == 0)) || { log "$r: loggen exited $lg_rc"; tail_log "$RUN/loggen.log" 5; }
      stable_since=$now # settle is counted from loggen's exit at the earliest
    fi
    ((lg_done && now - stable_since >= settle_us)) && break
    if ((now >= deadline)); then log "$r: still growing ${MAX_SETTLE}s after the end; cutting off"; break; fi
    kill -0 "$RCV_PID" 2>/dev/null || { ((lg_done)) && break; }
  done
  stop_pid "$lg_pid" 2

  local cpu1 recv sent lgrate notes= busy1 ch1 sub1=0 t_meas other_pct
  cpu1=$(cpu_ticks "$RCV_PID")
  [[ -n $SUB_PID ]] && sub1=$(cpu_ticks "$SUB_PID")
  children_ticks ch1
  busy1=$(machine_busy_ticks)
  t_meas=$(now_us)
  other_pct=$(awk -v o=$(((busy1 - busy0) - (cpu1 - cpu0) - (ch1 - ch0) - (sub1 - sub0))) \
    -v hz="$CLK_TCK" -v us=$((t_meas - t0)) 'BEGIN { v = 100 * (o / hz) / (us / 1e6); printf "%.0f", (v < 0) ? 0 : v }')
  ((other_pct < 5)) || notes+="[other load ${other_pct}% of a CPU] "
  kill -0 "$RCV_PID" 2>/dev/null || notes+="server died! "
  recv=$("count_$fn")
  sent=$(awk '/average rate/ { for (i = 1; i <= NF; i++) if ($i ~ /^count=/) { v = $i; sub(/count=/, "", v); sub(/,$/, "", v) } } END { print v + 0 }' "$RUN/loggen.log")
  lgrate=$(awk '/average rate/ { v = $4 } END { printf "%.0f", v + 0 }' "$RUN/loggen.log")
  [[ $r == sluice ]] && notes+="$(sluice_notes "$recv") "
  [[ -n ${SLUICE_EXTRA_NOTE:-} && $r == sluice ]] && notes+="[$SLUICE_EXTRA_NOTE] "
  if ((sent > 0 && recv != sent)); then notes+="recv-sent=$((recv - sent)) "; fi

  [[ -n $SUB_PID ]] && stop_pid "$SUB_PID"
  stop_pid "$RCV_PID" 10
  rm -f "$RUN/out.log" # can be GBs

  RECV_OF[$r]=$recv
  SENT_OF[$r]=$sent
  LGRATE_OF[$r]=$lgrate
  ELAPSED_OF[$r]=$(awk -v a="$t0" -v b="$t_last" 'BEGIN {printf "%.3f", (b - a) / 1e6}')
  RATE_OF[$r]=$(awk -v n="$recv" -v a="$t0" -v b="$t_last" 'BEGIN {printf "%.0f", (b > a) ? n / ((b - a) / 1e6) : 0}')
  CPU_OF[$r]=$(awk -v c=$((cpu1 - cpu0)) -v t="$CLK_TCK" -v n="$recv" 'BEGIN {printf "%.2f", (n > 0) ? (c / t) / (n / 1e6) : 0}')
  NOTE_OF[$r]=${notes% }
  if ((recv == 0)); then FAILED=1; log "$r: nothing arrived"; tail_log "$RUN/server.log"; fi
  log "$r: received $recv (loggen sent $sent) in ${ELAPSED_OF[$r]}s -> ${RATE_OF[$r]} msg/s"
  sleep 1 # let writeback of the deleted file and sockets in TIME_WAIT settle
}

# --- main ----------------------------------------------------------------------------
SLUICE_BUILD_NOTE=
if [[ -n ${WANT[sluice]:-} && $BUILD == 1 ]]; then
  log "building sluice (cargo build --release -p sluice)"
  if ! (cd "$REPO" && cargo build --release -p sluice >&2); then
    SLUICE_BUILD_NOTE="release build failed (cargo output above)"
    log "warning: release build failed; sluice will not be measured"
  fi
fi

setup_syslog_ng # loggen comes from here, whatever is selected
[[ -n ${WANT[rsyslog]:-} ]] && setup_rsyslog

VERSIONS="loggen/syslog-ng $(sng_env "$SNG_BIN" -V 2>/dev/null | sed -n '1s/.*(\(.*\)).*/\1/p')"
[[ -n ${WANT[rsyslog]:-} ]] &&
  VERSIONS+=", rsyslog $(env ${RS_LIBPATH:+LD_LIBRARY_PATH="$RS_LIBPATH"} "$RSYSLOGD" -v 2>/dev/null | awk 'NR == 1 {print $2}')"
[[ -n ${WANT[sluice]:-} && -x $SLUICE_BIN ]] && VERSIONS+=", sluice $SLUICE_BIN"

ORDER=()
for r in null rsyslog syslog-ng sluice; do [[ -n ${WANT[$r]:-} ]] && ORDER+=("$r"); done

busy_pct() { # share of all CPUs busy over the next second
  local a b
  a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y); d = y[2] - x[2]; printf "%.0f", (d > 0) ? 100 * (y[1] - x[1]) / d : 0 }'
}
BUSY=$(busy_pct)
log "CPUs: $(nproc), busy before the runs: ${BUSY}%"
((BUSY < 10)) || log "warning: the machine is not idle (${BUSY}% busy); numbers will be noisy"

for r in "${ORDER[@]}"; do run_one "$r"; done

# --- report ----------------------------------------------------------------------------
label() { [[ $1 == null ]] && echo null-sink || echo "$1"; }
sl=${RATE_OF[sluice]:-}
{
  echo
  echo "sluice ingest benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo '+dirty'), $(nproc) CPUs"
  echo "$VERSIONS"
  echo "loggen: RFC 5424 octet-counted over TCP, ${SIZE} B messages, $CONNECTIONS connections, ${DURATION} s, unthrottled"
  echo "msgs/s = messages counted at the receiver / (loggen start -> last arrival); CPUs ${BUSY}% busy before the runs"
  echo
  printf '%-11s %10s %16s %11s  %s\n' receiver msgs/s 'ratio(sluice/x)' cpu-s/Mmsg notes
  for r in "${ORDER[@]}"; do
    rate=${RATE_OF[$r]:-}
    if [[ -z $rate ]]; then
      printf '%-11s %10s %16s %11s  %s\n' "$(label "$r")" - - - "${NOTE_OF[$r]:-not run}"
      continue
    fi
    ratio=-
    [[ -n $sl && $rate != 0 ]] && ratio=$(awk -v a="$sl" -v b="$rate" 'BEGIN {printf "%.2fx", a / b}')
    printf '%-11s %10s %16s %11s  %s\n' "$(label "$r")" "$rate" "$ratio" "${CPU_OF[$r]}" \
      "recv=${RECV_OF[$r]} sent=${SENT_OF[$r]} (loggen ${LGRATE_OF[$r]}/s) ${ELAPSED_OF[$r]}s${NOTE_OF[$r]:+ ${NOTE_OF[$r]}}"
  done
  if [[ -n $sl && -n ${RATE_OF[rsyslog]:-} ]]; then
    awk -v a="$sl" -v b="${RATE_OF[rsyslog]}" 'BEGIN {
      printf "\ntarget sluice >= 1.0x rsyslog: %.2fx %s\n", a / b, (a >= b) ? "MET" : "NOT MET" }'
  fi
} | tee "$WORK/report.txt"
mkdir -p "$BENCH/out"
cp "$WORK/report.txt" "$BENCH/out/ingest-last.txt"
exit "$FAILED"
