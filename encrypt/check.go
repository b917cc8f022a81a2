package encrypt

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// adLabel starts every associated data built by AssociatedData.
const adLabel = "ginbyok/key/v1"

// AssociatedData returns the associated data that binds a sealed API key to
// its place: the fixed label "ginbyok/key/v1" followed by owner and provider,
// each preceded by its length as a uvarint. The encoding is unambiguous, so
// ("ab", "c") and ("a", "bc") differ, and a ciphertext copied to another
// owner or provider does not open. owner is the scope's owner, such as
// stores.Scope.Owner().
func AssociatedData(owner, provider string) []byte {
	b := make([]byte, 0, len(adLabel)+2*binary.MaxVarintLen64+len(owner)+len(provider))
	b = append(b, adLabel...)
	b = binary.AppendUvarint(b, uint64(len(owner)))
	b = append(b, owner...)
	b = binary.AppendUvarint(b, uint64(len(provider)))
	b = append(b, provider...)
	return b
}

// The check value is this fixed plaintext sealed under this fixed
// associated data; neither is secret.
const (
	checkPlaintext = "ginbyok check value v1"
	checkAD        = "ginbyok/check/v1"
)

// NewCheckValue seals a fixed plaintext under a fixed associated data with a.
// Store the result beside the sealed data; [VerifyCheckValue] later tells
// whether an AEAD built from a master secret is the one that sealed it.
func NewCheckValue(a AEAD) ([]byte, error) {
	cv, err := a.Encrypt([]byte(checkPlaintext), []byte(checkAD))
	if err != nil {
		return nil, fmt.Errorf("encrypt: sealing check value: %w", err)
	}
	return cv, nil
}

// VerifyCheckValue returns nil if cv, made by [NewCheckValue], opens under a
// to the expected plaintext, and otherwise an error wrapping [ErrWrongSecret]
// (and the error from a, such as [ErrAuth], [ErrUnknownKey] or
// [ErrMalformed]). A wrong master secret should stop a service from starting
// rather than make every stored key look missing.
//
// A check value sealed under a previous key of a [Keyring] still verifies;
// use [Keyring.NeedsRewrap] to decide when to store a fresh one.
func VerifyCheckValue(a AEAD, cv []byte) error {
	pt, err := a.Decrypt(cv, []byte(checkAD))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWrongSecret, err)
	}
	if subtle.ConstantTimeCompare(pt, []byte(checkPlaintext)) != 1 {
		return fmt.Errorf("%w: check value opened to an unexpected plaintext", ErrWrongSecret)
	}
	return nil
}
