// Package bench holds the project's cross-cutting benchmarks: a route
// guarded by the plugin against the same route unguarded on the same
// session store, the AEAD behind every stored key, and cache-miss reads
// from a PostgreSQL table of a million rows. It has no code of its own;
// docs/PERFORMANCE.md explains how to run the benchmarks and what they showed.
package bench
