#!/usr/bin/env bash
# Installs the Debian packages queue_ext builds, tests and benchmarks with.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  postgresql-15 postgresql-server-dev-15 postgresql-contrib
  libsodium-dev pkg-config build-essential
  postgresql-15-cron
  prometheus-postgres-exporter curl
  pgbouncer postgresql-15-partman
)

need=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
# Node.js and npm run the client tests (pgmq-js, examples/node-worker). A
# Node.js installed some other way (NodeSource's nodejs carries its own npm,
# which Debian's npm package conflicts with) is used as it is.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  need+=(nodejs npm)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${need[@]}"
fi
