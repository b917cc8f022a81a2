// Package e2e holds the browser tests of the byok example app: chromedp
// drives Debian's chromium (headless) against the app started in-process, on
// its embedded default (SQLite, cookie sessions). It has no code of its own.
//
// Run them with
//
//	go test ./e2e/
//
// They skip when chromium is missing (and fail under CI). Screenshots of the
// dashboard go to e2e/testdata/screenshots/ (ignored by git).
package e2e
