package html

import (
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
)

// maxPatternLen bounds HTMLPattern's output; a longer pattern (a large
// Unicode class) is left out and the server checks the key alone.
const maxPatternLen = 8 << 10

// HTMLPattern converts a Go regular expression into the value of an HTML
// input's pattern attribute, which browsers compile as JavaScript with the
// v flag and anchor at both ends. The result accepts exactly the values
// that re.MatchString accepts: anchors ^ and $ at the ends are dropped, a
// missing anchor becomes [\s\S]*, every character that is not an ASCII
// letter or digit is written as an escape that v mode allows, and
// case-insensitive letters become explicit classes.
//
// It returns "" (no pattern: the server still checks) when re is nil, uses
// something with no exact JavaScript equivalent (multi-line anchors, an
// anchor in the middle, a class that matches nothing), or converts to more
// than 8 KiB.
func HTMLPattern(re *regexp.Regexp) string { //nolint:revive // reads as html.HTMLPattern next to the HTML pattern attribute it fills (byok.Provider.HTMLPattern); html.Pattern would read as a regexp
	if re == nil {
		return ""
	}
	p, ok := convertPattern(re.String())
	if !ok {
		return ""
	}
	return p
}

func convertPattern(expr string) (string, bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return "", false
	}
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	var b strings.Builder
	start, end := 0, len(subs)
	if end > 0 && subs[0].Op == syntax.OpBeginText {
		start = 1
	} else {
		b.WriteString(`[\s\S]*`)
	}
	anchoredEnd := end > start && subs[end-1].Op == syntax.OpEndText
	if anchoredEnd {
		end--
	}
	for _, s := range subs[start:end] {
		if !writeNode(&b, s, true) {
			return "", false
		}
	}
	if !anchoredEnd {
		b.WriteString(`[\s\S]*`)
	}
	if b.Len() > maxPatternLen {
		return "", false
	}
	return b.String(), true
}

// writeNode writes re; inConcat says it is one item of a concatenation,
// where an alternation needs a group.
func writeNode(b *strings.Builder, re *syntax.Regexp, inConcat bool) bool {
	switch re.Op {
	case syntax.OpEmptyMatch:
		b.WriteString("(?:)")
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				writeFold(b, r)
			} else {
				writeRune(b, r)
			}
		}
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return false
		}
		b.WriteByte('[')
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			writeRune(b, lo)
			if hi != lo {
				b.WriteByte('-')
				writeRune(b, hi)
			}
		}
		b.WriteByte(']')
	case syntax.OpAnyCharNotNL:
		b.WriteString(`[^\n]`)
	case syntax.OpAnyChar:
		b.WriteString(`[\s\S]`)
	case syntax.OpWordBoundary:
		b.WriteString(`\b`)
	case syntax.OpNoWordBoundary:
		b.WriteString(`\B`)
	case syntax.OpCapture:
		b.WriteString("(?:")
		if !writeNode(b, re.Sub[0], false) {
			return false
		}
		b.WriteByte(')')
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		if !writeAtom(b, re.Sub[0]) {
			return false
		}
		switch re.Op {
		case syntax.OpStar:
			b.WriteByte('*')
		case syntax.OpPlus:
			b.WriteByte('+')
		case syntax.OpQuest:
			b.WriteByte('?')
		default:
			b.WriteByte('{')
			b.WriteString(strconv.Itoa(re.Min))
			switch {
			case re.Max == -1:
				b.WriteByte(',')
			case re.Max != re.Min:
				b.WriteByte(',')
				b.WriteString(strconv.Itoa(re.Max))
			}
			b.WriteByte('}')
		}
		if re.Flags&syntax.NonGreedy != 0 {
			b.WriteByte('?')
		}
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !writeNode(b, s, true) {
				return false
			}
		}
	case syntax.OpAlternate:
		if inConcat {
			b.WriteString("(?:")
		}
		for i, s := range re.Sub {
			if i > 0 {
				b.WriteByte('|')
			}
			if !writeNode(b, s, false) {
				return false
			}
		}
		if inConcat {
			b.WriteByte(')')
		}
	default:
		// OpNoMatch, line and text anchors away from the ends.
		return false
	}
	return true
}

// writeAtom writes re so that a following quantifier applies to all of it.
func writeAtom(b *strings.Builder, re *syntax.Regexp) bool {
	single := false
	switch re.Op {
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL, syntax.OpCapture:
		single = true
	case syntax.OpLiteral:
		single = len(re.Rune) == 1
	}
	if single {
		return writeNode(b, re, false)
	}
	b.WriteString("(?:")
	if !writeNode(b, re, false) {
		return false
	}
	b.WriteByte(')')
	return true
}

// writeFold writes a class of every case variant of r (or r alone when it
// has none).
func writeFold(b *strings.Builder, r rune) {
	variants := []rune{r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		variants = append(variants, f)
	}
	if len(variants) == 1 {
		writeRune(b, r)
		return
	}
	b.WriteByte('[')
	for _, v := range variants {
		writeRune(b, v)
	}
	b.WriteByte(']')
}

// writeRune writes r as itself when it is an ASCII letter or digit, else as
// an escape valid in and out of a v-mode class: \xHH or \u{H…}.
func writeRune(b *strings.Builder, r rune) {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		b.WriteRune(r)
	case r < 0x80:
		b.WriteString(`\x`)
		const hex = "0123456789ABCDEF"
		b.WriteByte(hex[r>>4])
		b.WriteByte(hex[r&0xF])
	default:
		b.WriteString(`\u{`)
		b.WriteString(strings.ToUpper(strconv.FormatInt(int64(r), 16)))
		b.WriteByte('}')
	}
}
