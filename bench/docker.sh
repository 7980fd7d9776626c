#!/usr/bin/env bash
# bench/docker.sh — `sluice agent` collecting from Docker containers that
# write as fast as they can, against `docker logs -f` reading the same.
#
# Builds sluice (release), imports the test image (a static busybox) if
# missing, then ROUNDS times: CONTAINERS containers each write LINES lines
# of SIZE bytes (`yes | head`) on the real Docker engine,
#   - once followed by `sluice agent` (embedded server, disk log, no rate
#     limit: it measures collection, not the noisy-neighbour limit):
#     lines/s from the first container's start to the last line stored,
#     agent CPU-seconds per million lines, its peak RSS, and the CPU that
#     dockerd spent meanwhile (it writes the json-file logs and serves the
#     log streams);
#   - once followed by one `docker logs -f` per container (to /dev/null):
#     the same numbers for the daemon's own client, the floor of reading
#     those streams at all.
# Prints medians and the ratio agent / docker-logs CPU per million lines.
# logspout (Go) cannot be built here (no Go module proxy); its reported
# behaviour is in bench/README.md.
#
# Usage: bench/docker.sh [--no-build] [--rounds N]
# Env:   CONTAINERS=10 LINES=100000 SIZE=256 ROUNDS=3 BUILD=1 SLUICE_BIN=target/release/sluice
set -euo pipefail
LOG_TAG=docker
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONTAINERS=${CONTAINERS:-10}
LINES=${LINES:-100000}
ROUNDS=${ROUNDS:-3}
IMAGE=sluice-test-busybox:1
while (($#)); do
  case $1 in
    --no-build) BUILD=0; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
check_common
command -v docker >/dev/null || die "docker is required (scripts/test.sh installs docker.io and starts dockerd)"
docker info >/dev/null 2>&1 || die "dockerd does not answer"
bench_init docker
build_sluice
[[ -x $SLUICE_BIN ]] || die "no binary at $SLUICE_BIN"

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  [[ -x /bin/busybox ]] || die "/bin/busybox is missing (Debian's busybox-static)"
  mkdir -p "$WORK/rootfs/bin"
  cp /bin/busybox "$WORK/rootfs/bin/busybox"
  for a in sh yes head echo; do ln -s busybox "$WORK/rootfs/bin/$a"; done
  tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" bin
  docker import "$WORK/rootfs.tar" "$IMAGE" >/dev/null
fi
DOCKERD=$(pidof dockerd) || die "no dockerd process"
LINE=$(printf '%*s' "$SIZE" '' | tr ' ' 'x')
TOTAL=$((CONTAINERS * LINES))

start_containers() { # label -> ids on stdout
  local i
  for ((i = 0; i < CONTAINERS; i++)); do
    docker run -d --network none --label "sluice.bench=$1" "$IMAGE" \
      sh -c "yes '$LINE' | head -n $LINES" 
  done
}
remove_containers() { docker rm -f $(docker ps -aq --filter "label=sluice.bench=$1") >/dev/null 2>&1 || true; }

run_agent() { # -> "rate cpu-per-M rss-MB dockerd-cpu-per-M"
  local label=agent$1 data=$WORK/data http syslog pid d0 c0 t0 got=0 prev=-1 stable=0
  rm -rf "$data"
  http=$(free_port) syslog=$(free_port)
  "$SLUICE_BIN" agent --http "127.0.0.1:$http" --syslog "127.0.0.1:$syslog" --grpc off \
    --max-lines-per-second 0 \
    --data-dir "$data" --include-label "sluice.bench:$label" >"$WORK/agent.log" 2>&1 </dev/null &
  pid=$!
  PIDS+=("$pid")
  wait_port "$http" "$pid" 60 || die "sluice did not start: $(tail -n 5 "$WORK/agent.log")"
  SLUICE_HTTP=$http
  sleep 1 # the first start's positions are written
  c0=$(cpu_ticks "$pid") d0=$(cpu_ticks "$DOCKERD") t0=$(now_us)
  start_containers "$label" >/dev/null
  while :; do
    got=$(metric_sum "$(metrics)" sluice_ingress_envelopes_total)
    got=${got:-0}
    ((got >= TOTAL)) && break
    if [[ $got == "$prev" ]]; then ((++stable >= 100)) && break; else stable=0; fi
    prev=$got
    sleep 0.05
  done
  local t1 c1 d1 rss
  t1=$(now_us) c1=$(cpu_ticks "$pid") d1=$(cpu_ticks "$DOCKERD")
  rss=$(awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
  stop_pid "$pid" 10
  remove_containers "$label"
  ((got == TOTAL)) || log "warning: the agent stored $got of $TOTAL lines"
  awk -v n="$got" -v a="$t0" -v b="$t1" -v c=$((c1 - c0)) -v d=$((d1 - d0)) -v t="$CLK_TCK" -v r="$rss" \
    'BEGIN { printf "%.0f %.2f %s %.2f\n", n / ((b - a) / 1e6), (c / t) / (n / 1e6), r, (d / t) / (n / 1e6) }'
}

run_docker_logs() { # -> "rate cpu-per-M rss-MB dockerd-cpu-per-M"
  local label=logs$1 ids id d0 ch0 ch1 t0 t1 d1 pids=()
  d0=$(cpu_ticks "$DOCKERD")
  children_ticks ch0
  t0=$(now_us)
  mapfile -t ids < <(start_containers "$label")
  for id in "${ids[@]}"; do
    docker logs -f "$id" >/dev/null 2>&1 &
    pids+=($!)
  done
  for id in "${pids[@]}"; do wait "$id" || true; done
  t1=$(now_us) d1=$(cpu_ticks "$DOCKERD")
  children_ticks ch1
  remove_containers "$label"
  # The docker run clients' CPU is in the children's time too; measured
  # alone below and taken out.
  awk -v n="$TOTAL" -v a="$t0" -v b="$t1" -v c=$((ch1 - ch0 - RUN_TICKS)) -v d=$((d1 - d0)) -v t="$CLK_TCK" \
    'BEGIN { if (c < 0) c = 0; printf "%.0f %.2f - %.2f\n", n / ((b - a) / 1e6), (c / t) / (n / 1e6), (d / t) / (n / 1e6) }'
}

# The CPU of starting the containers (docker run clients), to subtract.
children_ticks r0
start_containers warmup >/dev/null
children_ticks r1
RUN_TICKS=$((r1 - r0))
remove_containers warmup

declare -A RATE=() CPU=() RSS=() DCPU=()
for ((r = 1; r <= ROUNDS; r++)); do
  for who in agent logs; do
    if [[ $who == agent ]]; then read -r rate cpu rss dcpu < <(run_agent "$r")
    else read -r rate cpu rss dcpu < <(run_docker_logs "$r"); fi
    log "round $r $who: $rate lines/s, $cpu cpu-s/Mlines, rss $rss MB, dockerd $dcpu cpu-s/Mlines"
    RATE[$who]+="$rate " CPU[$who]+="$cpu " RSS[$who]+="$rss " DCPU[$who]+="$dcpu "
  done
done
median() { tr ' ' '\n' | sed '/^$/d;/^-$/d' | sort -n | awk '{v[NR]=$1} END {if (NR == 0) {print "-"; exit} print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo
echo "sluice agent Docker benchmark — $(date -u +%FT%TZ), $(git_rev), $(nproc) CPUs, docker $(docker version -f '{{.Server.Version}}' 2>/dev/null), $CONTAINERS containers x $LINES lines x ${SIZE}B, $ROUNDS rounds (medians)"
printf '%-12s %10s %16s %8s %20s   %s\n' reader lines/s cpu-s/Mlines rss-MB dockerd-cpu-s/Mlines rounds
for who in agent logs; do
  name=$who; [[ $who == logs ]] && name="docker-logs"
  printf '%-12s %10s %16s %8s %20s   %s\n' "$name" "$(echo "${RATE[$who]}" | median)" \
    "$(echo "${CPU[$who]}" | median)" "$(echo "${RSS[$who]}" | median)" "$(echo "${DCPU[$who]}" | median)" "${RATE[$who]}"
done
a=$(echo "${CPU[agent]}" | median) l=$(echo "${CPU[logs]}" | median)
awk -v a="$a" -v l="$l" 'BEGIN { printf "agent / docker logs -f, CPU per line read: %.2fx\n", (l > 0) ? a / l : 0 }'
