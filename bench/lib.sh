# bench/lib.sh — shared by bench/ingest.sh, drains.sh and log.sh; sourced, not run.
#
# The sourcing script sets `set -euo pipefail` and LOG_TAG, sources this
# file, parses its arguments, then calls `bench_init NAME` (temp dir,
# cleanup traps) in its main shell. Provides: the common knobs, process
# bookkeeping (PIDS, stop_pid, cleanup), timing and CPU accounting helpers,
# syslog-ng/loggen (and rsyslog) unpacked from Debian packages, sluice's
# /metrics, the release build, and `drive_load` / `drive_loggen`, the
# load-and-settle loop.
# shellcheck shell=bash
export LC_ALL=C # a '.' in $EPOCHREALTIME and in awk's numbers

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH")

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-2}
SIZE=${SIZE:-256}
RATE=${RATE:-100000000}
BUILD=${BUILD:-1}
KEEP=${KEEP:-0}
SETTLE=${SETTLE:-1.5}
MAX_SETTLE=${MAX_SETTLE:-60}
PEERS_DIR=${PEERS_DIR:-$BENCH/out/peers}
SLUICE_BIN=${SLUICE_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/sluice}
SLUICE_ARGS=${SLUICE_ARGS:-}
LOG_TAG=${LOG_TAG:-bench}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

check_common() { # the knobs and tools every script needs
  [[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "DURATION must be a positive integer"
  command -v python3 >/dev/null || die "python3 is required (null sink, port picking)"
  command -v curl >/dev/null || die "curl is required"
}

# --- process bookkeeping and cleanup ----------------------------------------
PIDS=()
WORK=
bench_init() { # name -> WORK (a temp dir), traps; call in the main shell
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-$1.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  cd "$WORK" # every path is absolute; nothing stray lands in the checkout
}
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
  if [[ -n $WORK ]]; then
    if [[ $KEEP == 1 ]]; then log "kept work dir $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}

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
all_cpu_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; } # "busy total"
busy_pct() { # share of all CPUs busy over the next second
  local a b
  a=$(all_cpu_ticks)
  sleep 1
  b=$(all_cpu_ticks)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y); d = y[2] - x[2]; printf "%.0f", (d > 0) ? 100 * (y[1] - x[1]) / d : 0 }'
}
git_rev() { # short HEAD, +dirty when the tree differs
  echo "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
}

# --- sluice -------------------------------------------------------------------
SLUICE_BUILD_NOTE=
build_sluice() { # BUILD=1: cargo build --release -p sluice; a failure is noted, not fatal
  [[ $BUILD == 1 ]] || return 0
  log "building sluice (cargo build --release -p sluice)"
  if ! (cd "$REPO" && cargo build --release -p sluice >&2); then
    SLUICE_BUILD_NOTE="release build failed (cargo output above)"
    log "warning: release build failed; sluice will not be measured"
  fi
}
SLUICE_HTTP=
metrics() { curl -sf --max-time 2 "http://127.0.0.1:$SLUICE_HTTP/metrics" 2>/dev/null || true; }
api() { curl -sf --max-time 5 "http://127.0.0.1:$SLUICE_HTTP$1" 2>/dev/null || true; } # path -> body ("" on failure)
json_field() { # json-text python-expression-over-d -> value ("" on failure)
  python3 -c 'import json, sys
try:
    d = json.loads(sys.argv[1]); print(eval(sys.argv[2]))
except Exception:
    pass' "$1" "$2" 2>/dev/null || true
}
metric_sum() { # text name [label-substring] -> sum over matching series ("" if none)
  awk -v name="$2" -v sel="${3:-}" '
    $1 ~ /^#/ { next }
    { series = $1; base = series; sub(/\{.*/, "", base) }
    base == name && (sel == "" || index(series, sel)) { s += $2; n++ }
    END { if (n) printf "%.0f\n", s }' <<<"$1"
}

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
sng_version() { sng_env "$SNG_BIN" -V 2>/dev/null | sed -n '1s/.*(\(.*\)).*/\1/p'; }

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

# --- one load run: a load generator against a receiver until it has caught up --
# drive_load LABEL RECEIVER_PID PROBE_FN QUIET_S MAX_S OUT [KNOWN_PID...] -- CMD...
#
# Runs CMD (the load; its stdout and stderr go to OUT) in the background.
# The run ends at the last time PROBE_FN's output changed: PROBE_FN is
# polled every 50 ms from QUIET_S seconds after the start (0: at once) until
# CMD has exited and the output has not moved for SETTLE s (the receiver
# has caught up), or MAX_S + MAX_SETTLE s after the start at the latest.
# Every poll is appended to $RUN/probe.tsv as "µs-since-epoch output".
# Sets DL_T0 and DL_T_LAST (µs), DL_CPU (the receiver's CPU ticks over the run),
# DL_OTHER_PCT (CPU used by anything but the receiver, the KNOWN_PIDs,
# the load and this script, in % of one CPU), DL_LG_RC (CMD's exit status),
# DL_BUSY_PCT (all CPUs' busy share over the run, softirq included: 100
# means the machine was saturated).
drive_load() {
  local label=$1 rpid=$2 probe=$3 quiet_s=$4 max_s=$5 out=$6
  shift 6
  local known=() p
  while (($#)) && [[ $1 != -- ]]; do known+=("$1"); shift; done
  [[ ${1:-} == -- ]] || die "drive_load: no -- before the command"
  shift
  local cpu0 t0 t_last last cur stable_since deadline now lg_pid lg_rc=0
  cpu0=$(cpu_ticks "$rpid")
  # To tell a clean run from a disturbed one: CPU used on the machine by
  # anything but the receiver, the load, the known helpers and this script.
  local busy0 ch0 k0=0 all0
  all0=$(all_cpu_ticks)
  busy0=$(machine_busy_ticks)
  children_ticks ch0
  for p in "${known[@]}"; do k0=$((k0 + $(cpu_ticks "$p"))); done
  t0=$(now_us)
  "$@" >"$out" 2>&1 </dev/null &
  lg_pid=$!
  PIDS+=("$lg_pid")
  while kill -0 "$lg_pid" 2>/dev/null && (($(now_us) < t0 + quiet_s * 1000000)); do sleep 0.1; done

  local settle_us lg_done=0
  settle_us=$(awk -v s="$SETTLE" 'BEGIN {printf "%d", s * 1000000}')
  last=$("$probe")
  t_last=$(now_us)
  echo "$t_last $last" >"$RUN/probe.tsv"
  stable_since=$t_last
  deadline=$((t0 + (max_s + MAX_SETTLE) * 1000000))
  while :; do
    sleep 0.05
    cur=$("$probe")
    now=$(now_us)
    echo "$now $cur" >>"$RUN/probe.tsv"
    if [[ $cur != "$last" ]]; then last=$cur t_last=$now stable_since=$now; fi
    if ((!lg_done)) && ! kill -0 "$lg_pid" 2>/dev/null; then
      lg_done=1
      wait "$lg_pid" || lg_rc=$?
      ((lg_rc == 0)) || { log "$label: the load generator exited $lg_rc"; tail_log "$out" 5; }
      stable_since=$now # settle is counted from the load's exit at the earliest
    fi
    ((lg_done && now - stable_since >= settle_us)) && break
    if ((now >= deadline)); then log "$label: still growing ${MAX_SETTLE}s after the end; cutting off"; break; fi
    kill -0 "$rpid" 2>/dev/null || { ((lg_done)) && break; }
  done
  stop_pid "$lg_pid" 2

  local cpu1 busy1 ch1 k1=0 t_meas all1
  cpu1=$(cpu_ticks "$rpid")
  for p in "${known[@]}"; do k1=$((k1 + $(cpu_ticks "$p"))); done
  children_ticks ch1
  busy1=$(machine_busy_ticks)
  all1=$(all_cpu_ticks)
  t_meas=$(now_us)
  DL_BUSY_PCT=$(awk -v a="$all0" -v b="$all1" 'BEGIN { split(a, x); split(b, y); d = y[2] - x[2]; printf "%.0f", (d > 0) ? 100 * (y[1] - x[1]) / d : 0 }')
  DL_OTHER_PCT=$(awk -v o=$(((busy1 - busy0) - (cpu1 - cpu0) - (ch1 - ch0) - (k1 - k0))) \
    -v hz="$CLK_TCK" -v us=$((t_meas - t0)) 'BEGIN { v = 100 * (o / hz) / (us / 1e6); printf "%.0f", (v < 0) ? 0 : v }')
  DL_T0=$t0 DL_T_LAST=$t_last DL_CPU=$((cpu1 - cpu0)) DL_LG_RC=$lg_rc
}

# drive_loggen LABEL PORT RECEIVER_PID PROBE_FN [KNOWN_PID...]
#
# drive_load with loggen's load (RFC 5424, octet-counted, TCP; SIZE,
# CONNECTIONS, DURATION, and LOGGEN_RATE or RATE per connection) to
# 127.0.0.1:PORT, its output in $RUN/loggen.log. loggen stops sending after
# DURATION s but exits only at its next 0.5 s report tick, so its own time
# (and rate) is not the receiver's; polling starts a second before the
# expected end. Sets what drive_load sets, and DL_SENT / DL_LGRATE
# (loggen's count and average rate).
drive_loggen() {
  local label=$1 port=$2 rpid=$3 probe=$4
  shift 4
  drive_load "$label" "$rpid" "$probe" $((DURATION - 1)) "$DURATION" "$RUN/loggen.log" "$@" -- \
    env LD_LIBRARY_PATH="$SNG_LIBPATH" SYSLOGNG_PREFIX="$SNG_ROOT/usr" \
    timeout -k 5 $((DURATION + 60)) "$LOGGEN_BIN" --inet --stream --syslog-proto \
    --size "$SIZE" --rate "${LOGGEN_RATE:-$RATE}" --interval "$DURATION" --active-connections "$CONNECTIONS" \
    127.0.0.1 "$port"
  DL_SENT=$(awk '/average rate/ { for (i = 1; i <= NF; i++) if ($i ~ /^count=/) { v = $i; sub(/count=/, "", v); sub(/,$/, "", v) } } END { print v + 0 }' "$RUN/loggen.log")
  DL_LGRATE=$(awk '/average rate/ { v = $4 } END { printf "%.0f", v + 0 }' "$RUN/loggen.log")
}
