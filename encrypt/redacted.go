package encrypt

import (
	"fmt"
	"log/slog"
)

// redactedText is what a Redacted prints as.
const redactedText = "[REDACTED]"

// Redacted holds a secret string, such as a provider API key, that must not
// reach logs, errors or responses by accident. Formatting it with any fmt
// verb (%v, %s, %q, %x, %#v, ...), logging it with log/slog, or marshalling
// it as JSON, text (and so XML) or gob gives "[REDACTED]"; there are no
// decoding methods, so a redacted value never comes back as a key.
// [Redacted.Reveal] returns the secret.
type Redacted string

// Reveal returns the secret itself.
func (r Redacted) Reveal() string { return string(r) }

// String returns "[REDACTED]".
func (r Redacted) String() string { return redactedText }

// GoString returns "[REDACTED]", for %#v.
func (r Redacted) GoString() string { return redactedText }

// Format writes "[REDACTED]" for every verb and flag.
func (r Redacted) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redactedText)) }

// MarshalJSON returns the JSON string "[REDACTED]".
func (r Redacted) MarshalJSON() ([]byte, error) { return []byte(`"` + redactedText + `"`), nil }

// MarshalText returns "[REDACTED]".
func (r Redacted) MarshalText() ([]byte, error) { return []byte(redactedText), nil }

// GobEncode returns "[REDACTED]", so encoding/gob (the default serializer of
// gorilla/sessions) does not store the secret either.
func (r Redacted) GobEncode() ([]byte, error) { return []byte(redactedText), nil }

// LogValue returns "[REDACTED]" for log/slog.
func (r Redacted) LogValue() slog.Value { return slog.StringValue(redactedText) }
