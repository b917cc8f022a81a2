package html

import (
	"html/template"
	"slices"
	"strconv"
	"time"
)

// FuncMap returns the functions the byok templates use. Every name starts
// with "byok" so it does not collide with a host's own functions:
//
//	byokAgo      (t, now time.Time) string  Ago
//	byokAdded    (t, now time.Time) string  Added
//	byokUpdated  (t, now time.Time) string  Updated
//	byokExpires  (t, now time.Time) string  Expires
//	byokISO      (t time.Time) string       RFC 3339 in UTC, for <time datetime>
//	byokDate     (t time.Time) string       "2 Jan 2006, 15:04 UTC", for title attributes
//	byokAsset    (base, name string) string base + "/" + name + "?v=" + a hash of the embedded file
//	byokHas      (list []string, s string) bool
func FuncMap() template.FuncMap {
	return template.FuncMap{
		"byokAgo":     Ago,
		"byokAdded":   Added,
		"byokUpdated": Updated,
		"byokExpires": Expires,
		"byokISO":     ISO,
		"byokDate":    Date,
		"byokAsset":   assetURL,
		"byokHas":     has,
	}
}

func has(list []string, s string) bool { return slices.Contains(list, s) }

// plural returns "1 minute" or "n minutes".
func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}

const day = 24 * time.Hour

// Ago says how long before now t was, in whole units, rounded down:
// "just now" under a minute (and for a t after now), then "1 minute ago" …
// "59 minutes ago", "1 hour ago" … "23 hours ago", "1 day ago" …
// "29 days ago", "1 month ago" … "12 months ago" (30-day months), then
// years (365 days). It never says "60 minutes ago".
func Ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute") + " ago"
	case d < day:
		return plural(int64(d/time.Hour), "hour") + " ago"
	case d < 30*day:
		return plural(int64(d/day), "day") + " ago"
	case d < 365*day:
		return plural(int64(d/(30*day)), "month") + " ago"
	default:
		return plural(int64(d/(365*day)), "year") + " ago"
	}
}

// Added returns "added " and Ago(t, now), e.g. "added 3 hours ago", or ""
// for a zero t.
func Added(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return "added " + Ago(t, now)
}

// Updated returns "updated " and Ago(t, now), or "" for a zero t.
func Updated(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return "updated " + Ago(t, now)
}

// Expires says when a key that expires at t will expire, seen at now:
// "never expires" for a zero t, "expired" once now reaches t, else
// "expires in less than a minute", then the remaining time rounded to the
// nearest unit: "expires in 1 minute" … "expires in 59 minutes" (under
// 59m30s), "expires in 1 hour" … "expires in 23 hours" (under 23h30m), then
// "expires in 1 day", "expires in 2 days" …. Rounding to the nearest unit
// (where Ago rounds down) keeps a fresh 24-hour key at "expires in 1 day"
// rather than "23 hours".
func Expires(t, now time.Time) string {
	if t.IsZero() {
		return "never expires"
	}
	r := t.Sub(now)
	switch {
	case r <= 0:
		return "expired"
	case r < time.Minute:
		return "expires in less than a minute"
	case r < time.Hour-30*time.Second:
		return "expires in " + plural(roundDiv(r, time.Minute), "minute")
	case r < day-30*time.Minute:
		return "expires in " + plural(roundDiv(r, time.Hour), "hour")
	default:
		return "expires in " + plural(roundDiv(r, day), "day")
	}
}

// roundDiv returns d/unit rounded half up.
func roundDiv(d, unit time.Duration) int64 {
	return int64((d + unit/2) / unit)
}

// ISO formats t in UTC as RFC 3339, for a <time datetime> attribute; ""
// for a zero t.
func ISO(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Date formats t in UTC for people, e.g. "2 Jan 2006, 15:04 UTC"; "" for a
// zero t.
func Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}
