package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// ttyRedraw is how often a progress line on a terminal is redrawn.
const ttyRedraw = 100 * time.Millisecond

// progress reports a long run on stderr: on a terminal one line redrawn in
// place with \r, otherwise a plain line every interval.
type progress struct {
	w     io.Writer
	tty   bool
	every time.Duration // between plain lines; 0: none
	now   func() time.Time
	start time.Time
	last  time.Time
	width int // of the line on screen (tty), to blank what a shorter one leaves
}

func newProgress(w io.Writer, tty bool, every time.Duration) *progress {
	now := time.Now
	t := now()
	return &progress{w: w, tty: tty, every: every, now: now, start: t, last: t}
}

// elapsed is the time since the run started.
func (p *progress) elapsed() time.Duration { return p.now().Sub(p.start) }

// update shows line() if it is time to; line is only called then.
func (p *progress) update(line func() string) {
	t := p.now()
	switch {
	case p.tty:
		if t.Sub(p.last) < ttyRedraw {
			return
		}
		s := line()
		pad := max(p.width-len(s), 0)
		fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
		p.width = len(s)
	case p.every > 0:
		if t.Sub(p.last) < p.every {
			return
		}
		fmt.Fprintln(p.w, line())
	default:
		return
	}
	p.last = t
}

// finish ends the redrawn line on a terminal so what follows starts on a
// line of its own.
func (p *progress) finish() {
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
}

// perSecond returns n per second of elapsed time.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// eta formats the time left for remaining items at perSec, "?" if unknown.
func eta(remaining int, perSec float64) string {
	if remaining <= 0 {
		return "0s"
	}
	if perSec <= 0 {
		return "?"
	}
	d := time.Duration(float64(remaining) / perSec * float64(time.Second))
	switch {
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
