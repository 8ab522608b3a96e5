#!/usr/bin/env bash
# Installs plumb's build dependencies from Debian packages; `install-deps.sh test` adds what the
# tests need besides (chromium and a font, for the browser test of the HTML report; the
# PostgreSQL server, which the PostgreSQL store's tests start on a port of their own), and
# `install-deps.sh sanitize` clang with its sanitizer and libFuzzer runtimes. Idempotent:
# does nothing when all packages are already installed. Needs root (or sudo) only when something
# is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  nlohmann-json3-dev libyaml-cpp-dev libfmt-dev libgtest-dev libsqlitecpp-dev
  libcurl4-openssl-dev libcli11-dev libcpp-httplib-dev libssl-dev libre2-dev libpq-dev
)
if [ "${1:-}" = "test" ]; then
  packages+=(chromium fonts-dejavu-core postgresql)
fi
if [ "${1:-}" = "sanitize" ]; then
  packages+=(clang libclang-rt-14-dev libfuzzer-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
