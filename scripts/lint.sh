#!/usr/bin/env bash
# lint.sh — golangci-lint v2 (config: .golangci.yml) and govulncheck, both
# installed from the Go module proxy into ./bin on first use.
#
# govulncheck needs the Go vulnerability database, which is fetched from
# vuln.go.dev: where that host cannot be reached the step says so and is
# skipped (set BYOK_VULNDB=file:///path to use a local copy).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/bin"
mkdir -p "$bin"
[ -x "$bin/golangci-lint" ] || GOBIN="$bin" go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
[ -x "$bin/govulncheck" ] || GOBIN="$bin" go install golang.org/x/vuln/cmd/govulncheck@v1.9.0

echo "== golangci-lint"
"$bin/golangci-lint" run ./...

echo "== govulncheck"
db="${BYOK_VULNDB:-https://vuln.go.dev}"
if "$bin/govulncheck" -db "$db" ./... 2>/tmp/govulncheck.err; then
	:
elif grep -qiE 'dial|lookup|connect|timeout|no such host|refused' /tmp/govulncheck.err; then
	echo "govulncheck: the vulnerability database at $db cannot be reached from here; skipped"
	cat /tmp/govulncheck.err >&2
else
	cat /tmp/govulncheck.err >&2
	exit 1
fi
