package byok

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Never is the time-to-live of a key that does not expire. Pass it to
// [Plugin.Set] or list it in [WithTTLChoices]; "never" is its text form.
const Never time.Duration = -1

// maxTTL bounds every finite time-to-live, so expiry times stay far from
// overflow: ten years is longer than any key should live.
const maxTTL = 10 * 365 * 24 * time.Hour

// DefaultTTLChoices is the set of lifetimes a user may pick when no
// [WithTTLChoices] is given: 30m, 2h, 12h, 24h, 7d, 30d and never.
func DefaultTTLChoices() []time.Duration {
	return []time.Duration{
		30 * time.Minute, 2 * time.Hour, 12 * time.Hour, 24 * time.Hour,
		7 * 24 * time.Hour, 30 * 24 * time.Hour, Never,
	}
}

// ParseTTL reads a key lifetime written as "never", as a whole number of
// days ("7d"), or as a Go duration ("30m", "12h", "1h30m"). The result is
// [Never] or a positive duration of at most ten years; anything else is an
// error wrapping [ErrInvalidTTL]. It does not check the allowed choices.
func ParseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "never") {
		return Never, nil
	}
	if len(s) > 32 {
		return 0, fmt.Errorf("%w: too long", ErrInvalidTTL)
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%w: %q is not a number of days", ErrInvalidTTL, s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%w: %q is not a duration such as 30m, 12h, 7d or never", ErrInvalidTTL, s)
		}
	}
	if err := checkTTL(d); err != nil {
		return 0, err
	}
	return d, nil
}

// checkTTL reports whether d is [Never] or a positive duration of at most
// ten years.
func checkTTL(d time.Duration) error {
	switch {
	case d == Never:
		return nil
	case d <= 0:
		return fmt.Errorf("%w: %s is not positive", ErrInvalidTTL, d)
	case d > maxTTL:
		return fmt.Errorf("%w: %s is longer than ten years", ErrInvalidTTL, d)
	}
	return nil
}

// FormatTTL writes d the way [ParseTTL] reads it, in its largest whole
// unit: "never", "7d", "24h", "30m", or a Go duration for anything finer.
func FormatTTL(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == Never:
		return "never"
	case d <= 0:
		return d.String()
	case d%day == 0 && d > day:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// ttlLabel is the human text of a lifetime for a form's select.
func ttlLabel(d time.Duration) string {
	const day = 24 * time.Hour
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.FormatInt(n, 10) + " " + one + "s"
	}
	switch {
	case d == Never:
		return "Never expires"
	case d%day == 0 && d > day:
		return unit(int64(d/day), "day")
	case d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	}
	return d.String()
}

// normalizeChoices validates a set of allowed lifetimes and returns it
// sorted, shortest first and [Never] last.
func normalizeChoices(in []time.Duration) ([]time.Duration, error) {
	if len(in) == 0 {
		return nil, errors.New("no choices")
	}
	out := slices.Clone(in)
	for _, d := range out {
		if err := checkTTL(d); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b time.Duration) int {
		switch {
		case a == b:
			return 0
		case a == Never:
			return 1
		case b == Never:
			return -1
		case a < b:
			return -1
		}
		return 1
	})
	for i := 1; i < len(out); i++ {
		if out[i] == out[i-1] {
			return nil, fmt.Errorf("%s is listed twice", FormatTTL(out[i]))
		}
	}
	return out, nil
}
