package main

import (
	"io"
	"testing"
)

// BenchmarkRotate measures rotate on 100,000 rows, in-process, with the
// default batch of 1000: each iteration re-seals every row, alternating
// between two secrets so no re-seeding is needed. The rows/s metric is the
// figure to quote; run it with
//
//	go test -run '^$' -bench 'BenchmarkRotate/postgres' -benchtime 3x ./cmd/byok/
func BenchmarkRotate(b *testing.B) {
	const n = 100_000
	for _, kind := range backendKinds {
		b.Run(kind, func(b *testing.B) {
			be := newBackend(b, kind)
			be.migrate(b)
			be.seed(b, makeRecords(b, n, mustRing(b, oldSecret)))
			keys := []*keyset{mustKeys(b, newSecret, oldSecret), mustKeys(b, oldSecret, newSecret)}
			e := &env{stdout: io.Discard, stderr: io.Discard, getenv: mapEnv(nil)}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				res, err := rotate(b.Context(), e, be.store, keys[i%2], rotateOptions{batch: 1000})
				if err != nil || res.Resealed != n {
					b.Fatalf("rotate: re-sealed %d of %d: %v", res.Resealed, n, err)
				}
				i++
			}
			b.ReportMetric(float64(n*i)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
