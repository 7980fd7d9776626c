#!/usr/bin/env bash
# bench/files.sh — `sluice agent --file` against rsyslog's imfile, in one
# run: one file appended at full speed.
#
# Builds sluice (release), then ROUNDS times, for each reader in turn: an
# empty file, the reader started on it (sluice agent with the disk log;
# rsyslogd with imfile into omfile), then LINES lines of SIZE bytes
# appended as fast as `yes | head` writes them. Prints lines/s (from the
# first append to the last line taken in), the reader's CPU-seconds per
# million lines and its peak RSS, and the ratio sluice / rsyslog.
#
# Usage: bench/files.sh [--no-build] [--rounds N]
# Env:   LINES=1000000 SIZE=256 ROUNDS=3 BUILD=1 SLUICE_BIN=target/release/sluice
set -euo pipefail
LOG_TAG=files
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LINES=${LINES:-1000000}
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
bench_init files
build_sluice
[[ -x $SLUICE_BIN ]] || die "no binary at $SLUICE_BIN"
setup_rsyslog
LINE=$(printf '%*s' "$((SIZE - 1))" '' | tr ' ' 'x')

# Counts what a reader has taken in.
count_sluice() { metric_sum "$(metrics)" sluice_ingress_envelopes_total 'protocol="file"'; }
count_rsyslog() { if [[ -f $WORK/out.log ]]; then wc -l <"$WORK/out.log"; else echo 0; fi; }

run_one() { # sluice|rsyslog -> "rate cpu-per-M rss-MB"
  local who=$1 file=$WORK/app.log pid c0 t0 got=0 prev=-1 stable=0
  rm -rf "$WORK/data" "$WORK/work" "$WORK/out.log" "$file"
  : >"$file"
  if [[ $who == sluice ]]; then
    local http syslog
    http=$(free_port) syslog=$(free_port)
    "$SLUICE_BIN" agent --docker off --file "app=$file" --http "127.0.0.1:$http" \
      --syslog "127.0.0.1:$syslog" --grpc off --data-dir "$WORK/data" --max-lines-per-second 0 >"$WORK/sluice.log" 2>&1 </dev/null &
    pid=$!
    SLUICE_HTTP=$http
    wait_port "$http" "$pid" 60 || die "sluice did not start: $(tail -n 5 "$WORK/sluice.log")"
    sleep 3.5 # the first scan picks the file up
  else
    mkdir -p "$WORK/work"
    cat >"$WORK/rsyslog.conf" <<CONF
global(workDirectory="$WORK/work")
module(load="imfile")
input(type="imfile" file="$file" tag="app")
action(type="omfile" file="$WORK/out.log")
CONF
    local args=(-n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslogd.pid")
    [[ -n $RS_MODDIR ]] && args+=(-M "$RS_MODDIR")
    env ${RS_LIBPATH:+LD_LIBRARY_PATH="$RS_LIBPATH"} "$RSYSLOGD" "${args[@]}" >"$WORK/rsyslog.log" 2>&1 &
    pid=$!
    sleep 2
    kill -0 "$pid" 2>/dev/null || die "rsyslogd did not start: $(tail -n 5 "$WORK/rsyslog.log")"
  fi
  PIDS+=("$pid")
  c0=$(cpu_ticks "$pid") t0=$(now_us)
  head -n "$LINES" < <(yes "$LINE") >>"$file"
  while :; do
    got=$("count_$who")
    got=${got:-0}
    ((got >= LINES)) && break
    if [[ $got == "$prev" ]]; then ((++stable >= 100)) && break; else stable=0; fi
    prev=$got
    sleep 0.05
  done
  local t1 c1 rss
  t1=$(now_us) c1=$(cpu_ticks "$pid")
  rss=$(awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
  stop_pid "$pid" 10
  ((got >= LINES)) || log "warning: $who took in $got of $LINES lines"
  awk -v n="$got" -v a="$t0" -v b="$t1" -v c=$((c1 - c0)) -v t="$CLK_TCK" -v r="$rss" \
    'BEGIN { printf "%.0f %.2f %s\n", n / ((b - a) / 1e6), (c / t) / (n / 1e6), r }'
}

declare -A RATE=() CPU=() RSS=()
for ((r = 1; r <= ROUNDS; r++)); do
  for who in sluice rsyslog; do
    read -r rate cpu rss < <(run_one "$who")
    log "round $r $who: $rate lines/s, $cpu cpu-s/Mlines, rss $rss MB"
    RATE[$who]+="$rate " CPU[$who]+="$cpu " RSS[$who]+="$rss "
  done
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo
echo "sluice agent file benchmark — $(date -u +%FT%TZ), $(git_rev), $(nproc) CPUs, $LINES lines x ${SIZE}B, $ROUNDS rounds (medians)"
printf '%-18s %10s %14s %8s   %s\n' reader lines/s cpu-s/Mlines rss-MB rounds
for who in sluice rsyslog; do
  name=$who; [[ $who == sluice ]] && name="sluice agent"; [[ $who == rsyslog ]] && name="rsyslog imfile"
  printf '%-18s %10s %14s %8s   %s\n' "$name" "$(echo "${RATE[$who]}" | median)" \
    "$(echo "${CPU[$who]}" | median)" "$(echo "${RSS[$who]}" | median)" "${RATE[$who]}"
done
s=$(echo "${RATE[sluice]}" | median) r=$(echo "${RATE[rsyslog]}" | median)
awk -v s="$s" -v r="$r" 'BEGIN { printf "sluice / rsyslog imfile, lines/s: %.2fx\n", (r > 0) ? s / r : 0 }'
