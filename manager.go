package byok

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// KeyInfo is what may be shown about one provider's key: never the key, never
// its ciphertext. Its JSON form is the key routes' answer:
// {"provider","name","has_key","masked","created_at","expires_at","expired"},
// with null times when there is no key or it never expires.
type KeyInfo struct {
	Provider  string    // provider name, e.g. "openai"
	Name      string    // display name, e.g. "OpenAI"
	HasKey    bool      // a live key is stored
	Masked    string    // e.g. "sk-…abcd"; "" without a key
	CreatedAt time.Time // when the key was stored; zero without a key
	UpdatedAt time.Time // when the record was last written; zero without a key
	ExpiresAt time.Time // zero: never expires (or no key)
	Expired   bool      // the key is past its expiry (it then counts as missing)
}

// MarshalJSON writes the key routes' JSON form of the info.
func (k KeyInfo) MarshalJSON() ([]byte, error) {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	return json.Marshal(struct {
		Provider  string     `json:"provider"`
		Name      string     `json:"name"`
		HasKey    bool       `json:"has_key"`
		Masked    string     `json:"masked"`
		CreatedAt *time.Time `json:"created_at"`
		ExpiresAt *time.Time `json:"expires_at"`
		Expired   bool       `json:"expired"`
	}{k.Provider, k.Name, k.HasKey, k.Masked, opt(k.CreatedAt), opt(k.ExpiresAt), k.Expired})
}

// rewrapper is what lazy rotation needs from the key-encryption AEAD;
// *encrypt.Keyring has it.
type rewrapper interface {
	NeedsRewrap(ciphertext []byte) bool
	Rewrap(ciphertext, associatedData []byte) ([]byte, error)
}

// Manager keeps the keys of any owner: it validates, seals, stores, opens,
// lazily re-seals and audits. It works with an explicit [stores.Scope] and a
// context, so it serves background jobs as well as requests; inside a
// request, [Plugin.Set], [Plugin.Get] and friends build the scope from the
// gin context. Get it from [Plugin.Keys]. It is safe for concurrent use.
type Manager struct {
	p         *Plugin
	aead      encrypt.AEAD
	rewrap    rewrapper // nil: no lazy rotation
	ring      *encrypt.Keyring
	store     stores.Store
	providers []Provider
	byName    map[string]int
}

// Provider returns the configured provider with this name.
func (m *Manager) Provider(name string) (Provider, bool) {
	i, ok := m.byName[name]
	if !ok {
		return Provider{}, false
	}
	return m.providers[i], true
}

// Providers returns the configured providers, in order.
func (m *Manager) Providers() []Provider { return append([]Provider(nil), m.providers...) }

// TTL checks a lifetime against the allowed choices: 0 means the default,
// and the result is [Never] or a positive duration among the choices.
func (m *Manager) TTL(d time.Duration) (time.Duration, error) {
	if d == 0 {
		return m.p.opts.ttl, nil
	}
	if !containsTTL(m.p.opts.ttlChoices, d) {
		return 0, fmt.Errorf("%w: %s is not one of %s", ErrInvalidTTL, FormatTTL(d), formatChoices(m.p.opts.ttlChoices))
	}
	return d, nil
}

// Validate runs every check a key must pass before it is stored: the
// provider is configured, the key has the provider's length and charset
// ([Provider.CheckFormat]), the [WithValidator] function accepts it and,
// with [WithLiveCheck], the provider accepts it. It returns the key with
// surrounding white space removed. Errors wrap [ErrUnknownProvider] or
// [ErrInvalidKey] and never contain the key.
func (m *Manager) Validate(ctx context.Context, provider, key string) (string, error) {
	p, ok := m.Provider(provider)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownProvider, provider)
	}
	key = strings.TrimSpace(key)
	if err := p.CheckFormat(key); err != nil {
		return "", &invalidKeyError{err}
	}
	if f := m.p.opts.validator; f != nil {
		if err := f(ctx, provider, key); err != nil {
			return "", &invalidKeyError{err}
		}
	}
	if c := m.p.opts.liveClient; c != nil && p.CheckURL != "" {
		if err := p.CheckKey(ctx, c, key); err != nil {
			return "", &invalidKeyError{err}
		}
	}
	return key, nil
}

// Set validates the key (see [Manager.Validate]), seals it for the scope's
// owner and the provider, and stores it with the lifetime ttl: 0 for the
// default ([WithTTL]), [Never], or a positive duration (for calls from code,
// any duration up to ten years; the HTTP routes accept only the
// [WithTTLChoices]). It reports whether an existing key was replaced.
func (m *Manager) Set(ctx context.Context, scope stores.Scope, provider, key string, ttl time.Duration) (KeyInfo, bool, error) {
	if ttl == 0 {
		ttl = m.p.opts.ttl
	}
	if err := checkTTL(ttl); err != nil {
		return KeyInfo{}, false, err
	}
	owner := scope.Owner()
	if owner == "" {
		return KeyInfo{}, false, ErrNoOwner
	}
	key, err := m.Validate(ctx, provider, key)
	if err != nil {
		return KeyInfo{}, false, err
	}
	fp := m.ring.Fingerprint(key)
	m.p.audit(ctx, AuditEvent{Action: EventKeyValidated, UserID: scope.UserID, Owner: owner, Provider: provider, Fingerprint: fp})

	plain := []byte(key)
	ct, err := m.aead.Encrypt(plain, encrypt.AssociatedData(owner, provider))
	clear(plain)
	if err != nil {
		return KeyInfo{}, false, fmt.Errorf("byok: sealing the key: %w", err)
	}
	now := m.p.now()
	rec := stores.Record{
		UserID:     scope.UserID,
		Provider:   provider,
		Ciphertext: ct,
		KeyID:      m.keyID(ct),
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if ttl != Never {
		rec.ExpiresAt = now.Add(ttl)
	}
	replaced, err := m.store.Put(ctx, scope, rec)
	if err != nil {
		return KeyInfo{}, false, fmt.Errorf("byok: storing the %s key: %w", provider, err)
	}
	action := EventKeySet
	if replaced {
		action = EventKeyReplaced
	}
	m.p.audit(ctx, AuditEvent{Action: action, UserID: scope.UserID, Owner: owner, Provider: provider, Fingerprint: fp})
	return m.info(provider, rec, key), replaced, nil
}

// Get returns the scope's key for the provider, opened. A missing or expired
// key is an error wrapping [ErrNotFound]; a key that does not open is logged
// as key.decrypt_failed and returned as an error wrapping both
// [ErrUnreadable] and [ErrNotFound] — it is never deleted. A key sealed under
// an old secret is sealed again under the current one.
func (m *Manager) Get(ctx context.Context, scope stores.Scope, provider string) (encrypt.Redacted, error) {
	key, _, err := m.get(ctx, scope, provider)
	return encrypt.Redacted(key), err
}

// Has reports whether the scope has a live key for the provider that opens.
// Only storage failures are errors.
func (m *Manager) Has(ctx context.Context, scope stores.Scope, provider string) (bool, error) {
	_, _, err := m.get(ctx, scope, provider)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// Info describes the scope's key for the provider. A missing or unreadable
// key gives HasKey false and no error; an unknown provider or a storage
// failure is an error.
func (m *Manager) Info(ctx context.Context, scope stores.Scope, provider string) (KeyInfo, error) {
	key, rec, err := m.get(ctx, scope, provider)
	switch {
	case err == nil:
		return m.info(provider, rec, key), nil
	case errors.Is(err, ErrNotFound):
		return m.info(provider, stores.Record{}, ""), nil
	}
	return KeyInfo{}, err
}

// List describes the scope's key for every configured provider, in order,
// one entry each, whether or not a key is stored.
func (m *Manager) List(ctx context.Context, scope stores.Scope) ([]KeyInfo, error) {
	out := make([]KeyInfo, len(m.providers))
	for i, p := range m.providers {
		out[i] = m.info(p.Name, stores.Record{}, "")
	}
	recs, err := m.store.List(ctx, scope)
	if err != nil {
		return nil, fmt.Errorf("byok: listing keys: %w", err)
	}
	for _, rec := range recs {
		i, ok := m.byName[rec.Provider]
		if !ok {
			continue
		}
		key, err := m.open(ctx, scope, rec)
		if err != nil {
			continue
		}
		out[i] = m.info(rec.Provider, rec, key)
	}
	return out, nil
}

// Delete removes the scope's key for the provider and reports whether there
// was one.
func (m *Manager) Delete(ctx context.Context, scope stores.Scope, provider string) (bool, error) {
	if _, ok := m.byName[provider]; !ok {
		return false, fmt.Errorf("%w: %q", ErrUnknownProvider, provider)
	}
	existed, err := m.store.Delete(ctx, scope, provider)
	if err != nil {
		return false, fmt.Errorf("byok: deleting the %s key: %w", provider, err)
	}
	if existed {
		m.p.audit(ctx, AuditEvent{Action: EventKeyDeleted, UserID: scope.UserID, Owner: scope.Owner(), Provider: provider})
	}
	return existed, nil
}

// Clear removes every key of the scope and returns how many there were.
func (m *Manager) Clear(ctx context.Context, scope stores.Scope) (int, error) {
	n, err := m.store.Clear(ctx, scope)
	if err != nil {
		return 0, fmt.Errorf("byok: clearing keys: %w", err)
	}
	m.p.audit(ctx, AuditEvent{Action: EventKeyCleared, UserID: scope.UserID, Owner: scope.Owner(), Count: n})
	return n, nil
}

// get loads and opens one key.
func (m *Manager) get(ctx context.Context, scope stores.Scope, provider string) (string, stores.Record, error) {
	if _, ok := m.byName[provider]; !ok {
		return "", stores.Record{}, fmt.Errorf("%w: %q", ErrUnknownProvider, provider)
	}
	rec, err := m.store.Get(ctx, scope, provider)
	if err != nil {
		return "", stores.Record{}, fmt.Errorf("byok: reading the %s key: %w", provider, err)
	}
	key, err := m.open(ctx, scope, rec)
	if err != nil {
		return "", stores.Record{}, err
	}
	return key, rec, nil
}

// open opens a record for the scope, treats an expired one as missing, and
// re-seals one sealed under an old key. A record that does not open is
// audited and reported as unreadable; it is left as it is.
func (m *Manager) open(ctx context.Context, scope stores.Scope, rec stores.Record) (string, error) {
	owner := scope.Owner()
	if rec.Expired(m.p.now()) {
		m.p.audit(ctx, AuditEvent{Action: EventKeyExpired, UserID: scope.UserID, Owner: owner, Provider: rec.Provider, Count: 1})
		return "", fmt.Errorf("byok: the %s key has expired: %w", rec.Provider, ErrNotFound)
	}
	ad := encrypt.AssociatedData(owner, rec.Provider)
	plain, err := m.aead.Decrypt(rec.Ciphertext, ad)
	if err != nil {
		m.p.audit(ctx, AuditEvent{Action: EventKeyDecryptFailed, UserID: scope.UserID, Owner: owner, Provider: rec.Provider, Reason: decryptReason(err)})
		return "", fmt.Errorf("byok: the %s key: %w: %w", rec.Provider, ErrUnreadable, ErrNotFound)
	}
	key := string(plain)
	clear(plain)
	if m.rewrap != nil && m.rewrap.NeedsRewrap(rec.Ciphertext) {
		m.rewrapRecord(ctx, scope, rec, ad)
	}
	return key, nil
}

// decryptReason names why a ciphertext did not open, without detail that
// could help an attacker beyond the error class.
func decryptReason(err error) string {
	switch {
	case errors.Is(err, encrypt.ErrUnknownKey):
		return "sealed under a key that is not in the keyring (a retired secret?)"
	case errors.Is(err, encrypt.ErrMalformed):
		return "malformed ciphertext"
	case errors.Is(err, encrypt.ErrAuth):
		return "authentication failed (wrong secret, or the value was moved or altered)"
	}
	return "decryption failed"
}

// rewrapRecord seals a record again under the primary key and stores it,
// keeping its times. A failure is logged; the key stays readable as it was.
func (m *Manager) rewrapRecord(ctx context.Context, scope stores.Scope, rec stores.Record, ad []byte) {
	ct, err := m.rewrap.Rewrap(rec.Ciphertext, ad)
	if err != nil {
		m.p.log.WarnContext(ctx, "byok: lazy rewrap failed", "provider", rec.Provider, "owner", scope.Owner(), "err", err)
		return
	}
	switch {
	case scope.UserID != "" && m.p.sql != nil:
		// SQL is the truth for signed-in users: replace the row only if it
		// still holds what was read, so a key replaced meanwhile is never
		// overwritten. Session caches pick the new value up when they refill.
		var n int
		n, err = m.p.sql.Rewrap(ctx, []sqlstore.Rewrapped{{
			UserID: scope.UserID, Provider: rec.Provider, Old: rec.Ciphertext, New: ct, KeyID: m.keyID(ct),
		}})
		if err == nil && n > 0 {
			if h, ok := m.store.(interface {
				Invalidate(ctx context.Context, userID string) error
			}); ok {
				err = h.Invalidate(ctx, scope.UserID)
			}
		}
	default:
		next := rec
		next.Ciphertext = ct
		next.KeyID = m.keyID(ct)
		next.UpdatedAt = m.p.now()
		_, err = m.store.Put(ctx, scope, next)
	}
	if err != nil {
		m.p.log.WarnContext(ctx, "byok: storing a rewrapped key failed", "provider", rec.Provider, "owner", scope.Owner(), "err", err)
	}
}

// keyID returns the id of the key that sealed ct, when the AEAD is a keyring.
func (m *Manager) keyID(ct []byte) uint32 {
	if m.rewrap == nil {
		return 0
	}
	id, err := encrypt.KeyID(ct)
	if err != nil {
		return 0
	}
	return id
}

// info builds the KeyInfo of a record whose key is known.
func (m *Manager) info(provider string, rec stores.Record, key string) KeyInfo {
	k := KeyInfo{Provider: provider, Name: provider}
	if p, ok := m.Provider(provider); ok && p.DisplayName != "" {
		k.Name = p.DisplayName
	}
	if key == "" {
		return k
	}
	k.HasKey = true
	k.Masked = encrypt.Mask(key)
	k.CreatedAt = rec.CreatedAt.UTC()
	k.UpdatedAt = rec.UpdatedAt.UTC()
	if !rec.ExpiresAt.IsZero() {
		k.ExpiresAt = rec.ExpiresAt.UTC()
	}
	return k
}
