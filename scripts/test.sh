#!/usr/bin/env bash
# test.sh — the one command that runs every test on a fresh machine.
#
# Installs what is missing (Redis, PostgreSQL, Chromium) from Debian's
# packages, starts a throwaway Redis and PostgreSQL on loopback, runs go vet
# and the race-enabled tests against them, and stops what it started — also
# when a test fails or the run is interrupted.
#
#   scripts/test.sh                 everything
#   scripts/test.sh ./encrypt/...   only these packages (go test arguments)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

byok_install_deps
trap byok_stop_services EXIT
trap 'exit 130' INT TERM
byok_start_services

export BYOK_CHROMIUM="${BYOK_CHROMIUM:-$(command -v chromium || true)}"
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./...)

echo "== go vet ${pkgs[*]}"
go vet "${pkgs[@]}"
echo "== go test -race -count=1 ${pkgs[*]}"
go test -race -count=1 -timeout 15m "${pkgs[@]}"
