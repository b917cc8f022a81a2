// Package reliability holds the tests that prove what DESIGN.md promises
// about faults and bad input: Redis killed and restarted under load,
// PostgreSQL cut off mid-write, two replicas under concurrent clients,
// fuzzed request bodies and cookies, a table of hostile HTTP input, a
// sentinel key searched for in every log, response and stored byte, and a
// wrong master secret at start.
//
// It has no code of its own: everything is in its _test.go files, run by
// the README's test command against the real services of internal/testenv.
// BYOK_SOAK=1 (scripts/soak.sh) makes the load and fault tests run longer
// and repeat their faults; scripts/soak.sh also runs every fuzz target of
// the module with `go test -fuzz` for a bounded time each.
package reliability
