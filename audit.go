package byok

import (
	"context"
	"log/slog"
	"time"
)

// Audit event names, the Action of an [AuditEvent] and the message of its
// log line.
const (
	// EventKeySet: a key was stored where there was none.
	EventKeySet = "key.set"
	// EventKeyReplaced: a key was stored over an existing one.
	EventKeyReplaced = "key.replaced"
	// EventKeyAdopted: a key an anonymous visitor saved became the
	// signed-in user's ([Plugin.AdoptAnonymousKeys]); Owner is the user's,
	// Reason names the anonymous owner it came from.
	EventKeyAdopted = "key.adopted"
	// EventKeyDeleted: one key was deleted.
	EventKeyDeleted = "key.deleted"
	// EventKeyCleared: all keys of an owner were deleted; Count says how
	// many. [Plugin.ForgetSession] sends it, with a Reason, for the keys
	// that lived in the forgotten session only.
	EventKeyCleared = "key.cleared"
	// EventKeyExpired: the janitor deleted expired keys (Count says how
	// many), or a read found one past its expiry.
	EventKeyExpired = "key.expired"
	// EventKeyDecryptFailed: a stored key did not open and was treated as
	// missing (never deleted); Reason says why.
	EventKeyDecryptFailed = "key.decrypt_failed"
	// EventKeyValidated: a key passed every check before being stored
	// (format, [WithValidator], and the live check when enabled).
	EventKeyValidated = "key.validated"
	// EventGuardDenied: [Plugin.RequireKey] or [Plugin.RequireAnyKey]
	// turned a request away for want of a key.
	EventGuardDenied = "guard.denied"
)

// AuditEvent is one security-relevant thing the plugin did. It names who and
// which provider, and identifies the key by its keyed fingerprint; it never
// holds a key. The same events go to the [WithLogger] logger and to the
// [WithAudit] hook.
type AuditEvent struct {
	Time        time.Time // UTC
	Action      string    // one of the Event… constants
	UserID      string    // the signed-in user, or "" for an anonymous visitor
	Owner       string    // stores.Scope.Owner(): "u:<user>" or "a:<anonymous id>"; "" if none
	Provider    string    // provider name; "" for events about several
	Fingerprint string    // keyed fingerprint of the key concerned, or ""
	Count       int       // keys concerned, for key.cleared and key.expired
	Reason      string    // why, for key.decrypt_failed, guard.denied, key.adopted and keys removed at sign-in or sign-out
}

// LogValue makes an event log as a group of its non-empty fields.
func (e AuditEvent) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, slog.String("action", e.Action))
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("user", e.UserID)
	add("owner", e.Owner)
	add("provider", e.Provider)
	add("fingerprint", e.Fingerprint)
	if e.Count != 0 {
		attrs = append(attrs, slog.Int("count", e.Count))
	}
	add("reason", e.Reason)
	return slog.GroupValue(attrs...)
}

// audit stamps the event, logs it and passes it to the hook.
func (p *Plugin) audit(ctx context.Context, e AuditEvent) {
	if e.Time.IsZero() {
		e.Time = p.now()
	}
	level := slog.LevelInfo
	if e.Action == EventKeyDecryptFailed {
		level = slog.LevelWarn
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if p.log.Enabled(ctx, level) {
		p.log.LogAttrs(ctx, level, e.Action, slog.Any("byok", e))
	}
	if p.opts.audit != nil {
		p.opts.audit(ctx, e)
	}
}
