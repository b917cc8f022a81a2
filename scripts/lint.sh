#!/usr/bin/env bash
# lint.sh — golangci-lint v2 (config: .golangci.yml) and govulncheck, both
# installed from the Go module proxy into ./bin on first use.
#
# govulncheck reads the Go vulnerability database. Where vuln.go.dev cannot
# be reached, the database is built locally from the golang.org/x/vulndb
# module (its OSV files, indexed by its own indexdb command), so the check
# still runs offline. BYOK_VULNDB=file:///path uses a database you have.
#
# Findings only in the Go standard library are reported but do not fail the
# run: they are fixed by a newer Go toolchain, not by this module. Findings
# in a module we require fail it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/bin"
mkdir -p "$bin"
vulndb_version=v0.0.0-20261105234957-e22db6528018
[ -x "$bin/golangci-lint" ] || GOBIN="$bin" go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
[ -x "$bin/govulncheck" ] || GOBIN="$bin" go install golang.org/x/vuln/cmd/govulncheck@v1.9.0

echo "== golangci-lint"
"$bin/golangci-lint" run ./...

echo "== govulncheck"
db="${BYOK_VULNDB:-}"
if [ -z "$db" ]; then
	if curl -fsS -m 5 -o /dev/null https://vuln.go.dev/index/db.json 2>/dev/null; then
		db=https://vuln.go.dev
	else
		local_db="$bin/vulndb-$vulndb_version"
		if [ ! -f "$local_db/index/db.json" ]; then
			echo "vuln.go.dev cannot be reached: building the database from golang.org/x/vulndb@$vulndb_version"
			src=$(go mod download -json "golang.org/x/vulndb@$vulndb_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
			rm -rf "$local_db.tmp"
			GOFLAGS= go run "golang.org/x/vulndb/cmd/indexdb@$vulndb_version" -vulns "$src/data/osv" -out "$local_db.tmp"
			mv "$local_db.tmp" "$local_db"
		fi
		db="file://$local_db"
	fi
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
"$bin/govulncheck" -db "$db" ./... >"$out" 2>&1 || rc=$?
cat "$out"
if [ "$rc" -eq 3 ] && grep -q 'vulnerabilities from the Go standard library\.' "$out" && ! grep -q 'Module: ' "$out"; then
	echo "govulncheck: only the Go standard library is affected ($(go version)); a newer Go patch release fixes it"
	rc=0
fi
exit "$rc"
