#!/usr/bin/env bash
# soak.sh — the long run: the reliability tests with longer load and
# repeated faults (BYOK_SOAK=1), then every fuzz target of the module with
# `go test -fuzz` for a bounded time each.
#
#   scripts/soak.sh                      soak tests, then every fuzz target
#   scripts/soak.sh --soak-only          only the soak tests
#   scripts/soak.sh --fuzz-only          only the fuzzing
#   scripts/soak.sh FuzzOpen FuzzKeyBodyJSON   fuzz only these targets (implies --fuzz-only)
#
# Environment:
#   BYOK_FUZZTIME       time per fuzz target (go test -fuzztime), default 30s
#   BYOK_SOAK_DURATION  how long each load/fault test runs under soak, default 60s
#   BYOK_TEST_REDIS_URL, BYOK_TEST_DATABASE_URL
#                       use these services; when unset, throwaway ones are
#                       installed and started as scripts/test.sh does
#
# A fuzz target that finds a failure writes the input under its package's
# testdata/fuzz/<target>/ (commit it with the fix) and this script exits 1
# after running the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${BYOK_FUZZTIME:-30s}"
export BYOK_SOAK_DURATION="${BYOK_SOAK_DURATION:-60s}"
do_soak=1 do_fuzz=1
targets=()
for a in "$@"; do
	case "$a" in
	--soak-only) do_fuzz=0 ;;
	--fuzz-only) do_soak=0 ;;
	-h | --help)
		sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	Fuzz*) targets+=("$a") do_soak=0 ;;
	*)
		echo "soak.sh: unknown argument $a (see --help)" >&2
		exit 2
		;;
	esac
done

if [ "$do_soak" -eq 1 ] && { [ -z "${BYOK_TEST_REDIS_URL:-}" ] || [ -z "${BYOK_TEST_DATABASE_URL:-}" ]; }; then
	. scripts/services.sh
	byok_install_deps
	trap byok_stop_services EXIT
	trap 'exit 130' INT TERM
	byok_start_services
fi

failed=()

if [ "$do_soak" -eq 1 ]; then
	echo "== soak: BYOK_SOAK=1 BYOK_SOAK_DURATION=$BYOK_SOAK_DURATION go test -race ./reliability/"
	# pipefail: the pipeline fails when go test does. Only the test names,
	# their t.Logf lines (the counts) and the verdicts are shown.
	if ! BYOK_SOAK=1 go test -race -count=1 -timeout 60m -v ./reliability/ 2>&1 |
		grep -E '^(--- |\s+[a-z_]+_test\.go:[0-9]+:|PASS|FAIL|ok|panic)'; then
		failed+=("soak tests")
	fi
fi

if [ "$do_fuzz" -eq 1 ]; then
	# Every fuzz target of the module: "package-dir target" per line.
	mapfile -t all < <(grep -rE --include='*_test.go' -o '^func (Fuzz[A-Za-z0-9_]*)\(' . |
		grep -v '/vendor/' | sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|\1 \2|; s|^\./[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|. \1|' | sort -u)
	n=0
	for line in "${all[@]}"; do
		dir=${line% *} name=${line#* }
		if [ ${#targets[@]} -gt 0 ] && [[ ! " ${targets[*]} " =~ " $name " ]]; then
			continue
		fi
		n=$((n + 1))
		echo "== fuzz: $name in ./$dir for $fuzztime"
		if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$dir" 2>&1 | tail -n 4; then
			failed+=("$name")
		fi
	done
	if [ "$n" -eq 0 ]; then
		echo "soak.sh: no fuzz target matched ${targets[*]}" >&2
		exit 2
	fi
	echo "== fuzzed $n targets for $fuzztime each"
fi

if [ ${#failed[@]} -gt 0 ]; then
	echo "soak.sh: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "soak.sh: all passed"
