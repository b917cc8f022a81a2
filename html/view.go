package html

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// Alert kinds, used by Alert.Kind, Toast.Kind and ValidationMessage. An
// unknown kind renders as KindInfo.
const (
	KindInfo    = "info"
	KindSuccess = "success"
	KindWarning = "warning"
	KindError   = "error"
)

// Alert styles, used by Alert.Style. The empty style is daisyUI's solid
// alert.
const (
	StyleSoft    = "soft"
	StyleOutline = "outline"
)

// Key statuses, used by KeyStatus.Status.
const (
	StatusAdded   = "added"
	StatusUpdated = "updated"
	StatusDeleted = "deleted"
	StatusExpired = "expired"
	StatusInvalid = "invalid"
)

// Severities, used by SecurityAlert.Severity. An unknown severity renders
// as SeverityMedium.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// MaxVisibleAlerts is how many alerts Page.AlertStack shows before folding
// the rest behind "+N more".
const MaxVisibleAlerts = 3

// DefaultToastTimeout is how long a toast stays when Toast.Timeout is zero.
const DefaultToastTimeout = 5 * time.Second

// Provider is what the templates know about one key provider.
type Provider struct {
	// Name is the provider's id in URLs and form values, e.g. "openai".
	// The plugin has checked it: lower-case letters, digits, '-' and '_'.
	Name string
	// DisplayName is the name people read, e.g. "OpenAI".
	DisplayName string
	// Placeholder is the input's placeholder, e.g. "sk-…". Empty: none.
	Placeholder string
	// Pattern is the input's HTML pattern attribute (JavaScript v-mode
	// syntax, implicitly anchored); build it with HTMLPattern. Empty: none.
	Pattern string
	// MinLen and MaxLen bound the key's length; 0 leaves a bound out.
	MinLen, MaxLen int
	// DocsURL is where a user creates a key; empty hides the link.
	DocsURL string
	// Help is one sentence shown under the input; empty shows
	// DefaultHelp.
	Help string
}

// DefaultHelp is the help line shown under a key input when Provider.Help
// is empty.
const DefaultHelp = "Encrypted before it is stored; only the last few characters are ever shown again."

// HelpText returns Help, or DefaultHelp when Help is empty.
func (p Provider) HelpText() string {
	if p.Help != "" {
		return p.Help
	}
	return DefaultHelp
}

// Label returns DisplayName, or Name when DisplayName is empty.
func (p Provider) Label() string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.Name
}

// KeyView is the state of one provider's key for one user: never the key
// itself, only its mask and times.
type KeyView struct {
	// Provider describes the provider the key is for.
	Provider Provider
	// HasKey reports whether a key is stored (it may have expired).
	HasKey bool
	// Masked is the key's mask from encrypt.Mask, e.g. "sk-…abcd".
	Masked string
	// CreatedAt is when this key value was first stored (UTC).
	CreatedAt time.Time
	// UpdatedAt is when the key was last written; zero, or less than a
	// minute after CreatedAt, hides the "updated" text.
	UpdatedAt time.Time
	// ExpiresAt is when the key expires; zero means never.
	ExpiresAt time.Time
	// Expired reports whether the stored key is past ExpiresAt.
	Expired bool
}

// Live reports whether a key is stored and has not expired.
func (k KeyView) Live() bool { return k.HasKey && !k.Expired }

// Updated reports whether the key was rewritten at least a minute after
// it was created (sooner, "added just now" says enough).
func (k KeyView) Updated() bool {
	return !k.UpdatedAt.IsZero() && k.UpdatedAt.Sub(k.CreatedAt) >= time.Minute
}

// TTLChoice is one option of the "keep for" select, posted as form field
// "ttl".
type TTLChoice struct {
	// Value is what the form posts, e.g. "24h", "7d" or "never".
	Value string
	// Label is what the option says, e.g. "24 hours".
	Label string
	// Default marks the option selected when the form is first shown.
	Default bool
}

// Problem is an error the templates show: the same words as the plugin's
// application/problem+json answer.
type Problem struct {
	// Title is a short summary, e.g. "That key doesn't look right".
	Title string
	// Detail says what happened and what to do. It must never contain a
	// key.
	Detail string
	// Code is the stable code, e.g. "invalid_key".
	Code string
	// Status is the HTTP status the answer carries.
	Status int
	// Field names the form field at fault: "api_key", "ttl" or "".
	Field string
	// Provider names the provider whose form was posted, or "".
	Provider string
}

// Alert returns the problem as an error alert.
func (p Problem) Alert() Alert {
	return Alert{Kind: KindError, Title: p.Title, Message: p.Detail}
}

// Alert is a message box: info, success, warning or error.
type Alert struct {
	// Kind is KindInfo, KindSuccess, KindWarning or KindError.
	Kind string
	// Title is an optional bold first line.
	Title string
	// Message is the alert's text.
	Message string
	// Dismissible adds a close button (shown only when JavaScript runs).
	Dismissible bool
	// Style is "", StyleSoft or StyleOutline.
	Style string
	// ID is an optional element id.
	ID string
}

// SecurityAlert is a security warning with a severity and an optional
// action link.
type SecurityAlert struct {
	// Severity is SeverityLow, SeverityMedium, SeverityHigh or
	// SeverityCritical.
	Severity string
	// Message says what is wrong.
	Message string
	// ActionURL is an optional link to fix it; ActionText labels it
	// (default "Fix now").
	ActionURL, ActionText string
}

// Kind maps the severity to an alert kind: low is info, medium is warning,
// high and critical are error.
func (s SecurityAlert) Kind() string {
	switch s.Severity {
	case SeverityLow:
		return KindInfo
	case SeverityHigh, SeverityCritical:
		return KindError
	default:
		return KindWarning
	}
}

// Level returns the severity, with unknown values read as SeverityMedium.
func (s SecurityAlert) Level() string {
	switch s.Severity {
	case SeverityLow, SeverityHigh, SeverityCritical:
		return s.Severity
	default:
		return SeverityMedium
	}
}

// KeyStatus is a notification that a provider's key changed.
type KeyStatus struct {
	// Provider is the provider's display name.
	Provider string
	// Status is StatusAdded, StatusUpdated, StatusDeleted, StatusExpired
	// or StatusInvalid.
	Status string
	// Masked is the key's mask, shown for added and updated keys.
	Masked string
	// Timeout is how long the notification stays; zero is
	// DefaultToastTimeout, negative keeps it until dismissed.
	Timeout time.Duration
}

// Kind maps the status to an alert kind.
func (s KeyStatus) Kind() string {
	switch s.Status {
	case StatusAdded, StatusUpdated:
		return KindSuccess
	case StatusExpired:
		return KindWarning
	case StatusInvalid:
		return KindError
	default:
		return KindInfo
	}
}

// Text is the notification's sentence, e.g. "OpenAI key saved (sk-…abcd)".
func (s KeyStatus) Text() string {
	var t string
	switch s.Status {
	case StatusAdded:
		t = s.Provider + " key saved"
	case StatusUpdated:
		t = s.Provider + " key replaced"
	case StatusDeleted:
		t = s.Provider + " key removed"
	case StatusExpired:
		t = s.Provider + " key has expired"
	case StatusInvalid:
		t = s.Provider + " key was not accepted"
	default:
		t = s.Provider + " key changed"
	}
	if s.Masked != "" && (s.Status == StatusAdded || s.Status == StatusUpdated) {
		t += " (" + s.Masked + ")"
	}
	return t
}

// TimeoutMS is the timeout in milliseconds for byok.js; 0 means never.
func (s KeyStatus) TimeoutMS() int64 { return timeoutMS(s.Timeout) }

// Toast returns the status as a toast.
func (s KeyStatus) Toast() Toast {
	return Toast{Kind: s.Kind(), Message: s.Text(), Timeout: s.Timeout}
}

// Toast is a short notification shown in the toast container.
type Toast struct {
	// Kind is KindInfo, KindSuccess, KindWarning or KindError.
	Kind string
	// Message is the toast's text.
	Message string
	// Timeout is how long the toast stays; zero is DefaultToastTimeout,
	// negative keeps it until dismissed.
	Timeout time.Duration
}

// TimeoutMS is the timeout in milliseconds for byok.js; 0 means never.
func (t Toast) TimeoutMS() int64 { return timeoutMS(t.Timeout) }

func timeoutMS(d time.Duration) int64 {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return DefaultToastTimeout.Milliseconds()
	default:
		return d.Milliseconds()
	}
}

// ValidationMessage is a line under a form field saying what is wrong (or
// that it is fine).
type ValidationMessage struct {
	// ID is the element id the field's aria-describedby points at.
	ID string
	// Message is the text.
	Message string
	// Valid shows the message as a success instead of an error.
	Valid bool
}

// AlertStack is a column of alerts that shows the first Max and folds the
// rest behind "+N more".
type AlertStack struct {
	// Alerts are the alerts, most important first.
	Alerts []Alert
	// Max is how many are shown unfolded; 0 or less is MaxVisibleAlerts.
	Max int
}

func (s AlertStack) max() int {
	if s.Max <= 0 {
		return MaxVisibleAlerts
	}
	return s.Max
}

// Visible returns the alerts shown unfolded.
func (s AlertStack) Visible() []Alert {
	return s.Alerts[:min(len(s.Alerts), s.max())]
}

// Hidden returns the alerts folded behind "+N more".
func (s AlertStack) Hidden() []Alert {
	return s.Alerts[min(len(s.Alerts), s.max()):]
}

// CardData is what byok/key-card, byok/key-form, byok/inline-input and
// byok/card-update render: one provider's key and where its forms post.
type CardData struct {
	// Key is the provider's key state.
	Key KeyView
	// Prefix is where the key routes are mounted, e.g. "/keys", without a
	// trailing slash.
	Prefix string
	// Next is the validated same-site path to return to after saving, or
	// "". When set, save forms post without htmx so the plugin's 303
	// brings the browser back.
	Next string
	// TTLChoices are the "keep for" options; empty leaves the select out
	// and the plugin uses its default.
	TTLChoices []TTLChoice
	// Now is the time the "added …" and "expires …" texts are relative to.
	Now time.Time
	// Needed marks a provider a guard asked for.
	Needed bool
	// Autofocus puts the autofocus attribute on the key input, or on the
	// TTL select when Error names the "ttl" field.
	Autofocus bool
	// Error is shown in the card: under the field it names, or above the
	// form when Field is empty.
	Error *Problem
	// Toast, when set, is sent out of band into the toast container by
	// byok/card-update.
	Toast *Toast
}

// ID is the card's element id: "byok-card-" and the provider name.
func (c CardData) ID() string { return "byok-card-" + c.Key.Provider.Name }

// Action is the URL the save form posts to: Prefix/{provider}.
func (c CardData) Action() string {
	return c.Prefix + "/" + url.PathEscape(c.Key.Provider.Name)
}

// DeleteAction is the URL the delete form posts to: Prefix/{provider}/delete.
func (c CardData) DeleteAction() string { return c.Action() + "/delete" }

// InputID is the element id of the card's key input.
func (c CardData) InputID() string { return c.ID() + "-key" }

// TTLID is the element id of the card's TTL select.
func (c CardData) TTLID() string { return c.ID() + "-ttl" }

// HelpID is the element id of the help line under the key input.
func (c CardData) HelpID() string { return c.ID() + "-help" }

// FieldID returns the element id of a form field ("api_key" or "ttl"), or
// "" for any other name.
func (c CardData) FieldID(field string) string {
	switch field {
	case "api_key":
		return c.InputID()
	case "ttl":
		return c.TTLID()
	}
	return ""
}

// Validation returns the validation message for a form field, with the id
// the field's aria-describedby names. Its Message is "" when the field has
// no error.
func (c CardData) Validation(field string) ValidationMessage {
	id := c.FieldID(field)
	if id == "" {
		id = c.ID() + "-form"
	}
	return ValidationMessage{ID: id + "-error", Message: c.FieldError(field)}
}

// FieldError returns the error detail for the named form field, or "".
func (c CardData) FieldError(field string) string {
	if c.Error == nil || c.Error.Field != field {
		return ""
	}
	if c.Error.Detail != "" {
		return c.Error.Detail
	}
	return c.Error.Title
}

// FormError returns the card's error when it names no field, else nil.
func (c CardData) FormError() *Problem {
	if c.Error == nil || c.Error.Field == "api_key" || c.Error.Field == "ttl" {
		return nil
	}
	return c.Error
}

// Page is what byok/page, byok/dashboard, byok/dashboard-update and
// byok/multi-form render.
type Page struct {
	// Title is the page title and heading; empty is "API keys".
	Title string
	// Prefix is where the key routes are mounted, e.g. "/keys", without a
	// trailing slash.
	Prefix string
	// AssetsPath is where Assets() is served, e.g. "/keys/assets",
	// without a trailing slash.
	AssetsPath string
	// AppName is the host app's name, shown in the navbar; empty is
	// "Bring your own key".
	AppName string
	// HomeURL, when set, is linked from the navbar ("Back to the app").
	HomeURL string
	// Keys holds one entry per configured provider, in display order.
	Keys []KeyView
	// Need lists the provider names a guard asked for (?need=).
	Need []string
	// Next is the validated same-site path to return to after saving, or "".
	Next string
	// TTLChoices are the "keep for" options.
	TTLChoices []TTLChoice
	// Alerts are shown above the dashboard, at most MaxVisibleAlerts
	// unfolded.
	Alerts []Alert
	// Toasts are shown in the toast container (e.g. a flash after a
	// redirect); byok/dashboard-update sends them out of band.
	Toasts []Toast
	// Error is shown above the dashboard as an error summary, and inside
	// the card of Error.Provider.
	Error *Problem
	// Now is the time relative texts are computed from.
	Now time.Time
	// User is the signed-in user's display name; empty means an
	// anonymous session.
	User string
}

// PageTitle returns Title, or "API keys" when it is empty.
func (p Page) PageTitle() string {
	if p.Title != "" {
		return p.Title
	}
	return "API keys"
}

// Brand returns AppName, or "Bring your own key" when it is empty.
func (p Page) Brand() string {
	if p.AppName != "" {
		return p.AppName
	}
	return "Bring your own key"
}

// Needs reports whether a guard asked for the named provider.
func (p Page) Needs(name string) bool { return slices.Contains(p.Need, name) }

// Needed returns the Keys a guard asked for, in display order.
func (p Page) Needed() []KeyView {
	var out []KeyView
	for _, k := range p.Keys {
		if p.Needs(k.Provider.Name) {
			out = append(out, k)
		}
	}
	return out
}

// NeededLabels joins the labels of Needed for a sentence: "OpenAI",
// "OpenAI and Anthropic", "OpenAI, Anthropic and Google".
func (p Page) NeededLabels() string {
	var labels []string
	for _, k := range p.Needed() {
		labels = append(labels, k.Provider.Label())
	}
	switch len(labels) {
	case 0:
		return ""
	case 1:
		return labels[0]
	}
	return strings.Join(labels[:len(labels)-1], ", ") + " and " + labels[len(labels)-1]
}

// Saved counts the live (stored and unexpired) keys.
func (p Page) Saved() int {
	n := 0
	for _, k := range p.Keys {
		if k.Live() {
			n++
		}
	}
	return n
}

// AnyStored reports whether any key, live or expired, is stored.
func (p Page) AnyStored() bool {
	for _, k := range p.Keys {
		if k.HasKey {
			return true
		}
	}
	return false
}

// DefaultProvider is the provider the multi-provider form selects first:
// the first one a guard asked for, else the first without a live key,
// else the first.
func (p Page) DefaultProvider() string {
	for _, k := range p.Keys {
		if p.Needs(k.Provider.Name) {
			return k.Provider.Name
		}
	}
	for _, k := range p.Keys {
		if !k.Live() {
			return k.Provider.Name
		}
	}
	if len(p.Keys) > 0 {
		return p.Keys[0].Provider.Name
	}
	return ""
}

// DefaultKey returns the KeyView of DefaultProvider (zero when there are
// no Keys).
func (p Page) DefaultKey() KeyView {
	name := p.DefaultProvider()
	for _, k := range p.Keys {
		if k.Provider.Name == name {
			return k
		}
	}
	return KeyView{}
}

// ErrorFor returns Error when it is about the named provider, else nil.
func (p Page) ErrorFor(name string) *Problem {
	if p.Error != nil && p.Error.Provider == name {
		return p.Error
	}
	return nil
}

// ErrorFieldID returns the element id of the field Error names, or "" when
// it names no field of a shown card.
func (p Page) ErrorFieldID() string {
	if p.Error == nil || p.Error.Provider == "" {
		return ""
	}
	for _, k := range p.Keys {
		if k.Provider.Name == p.Error.Provider {
			return CardData{Key: k}.FieldID(p.Error.Field)
		}
	}
	return ""
}

// Card returns the CardData for one of the page's keys. The card gets the
// page's Error when it names this provider, and autofocus when its key
// input is where the user should type next: the field at fault, or else
// the first needed provider without a live key.
func (p Page) Card(k KeyView) CardData {
	c := CardData{
		Key:        k,
		Prefix:     p.Prefix,
		Next:       p.Next,
		TTLChoices: p.TTLChoices,
		Now:        p.Now,
		Needed:     p.Needs(k.Provider.Name),
		Error:      p.ErrorFor(k.Provider.Name),
	}
	switch {
	case p.Error != nil && p.Error.Provider != "" && p.Error.Field != "":
		c.Autofocus = c.Error != nil
	case p.Error == nil:
		for _, n := range p.Needed() {
			if !n.Live() {
				c.Autofocus = n.Provider.Name == k.Provider.Name
				break
			}
		}
	}
	return c
}

// MultiCard returns the CardData of the multi-provider form: the default
// provider's key, with the page's routes, next and TTL choices.
func (p Page) MultiCard() CardData {
	c := p.Card(p.DefaultKey())
	c.Autofocus = false
	return c
}

// AlertStack returns the page's Alerts as a stack.
func (p Page) AlertStack() AlertStack { return AlertStack{Alerts: p.Alerts} }

// ClearAction is the URL the "remove all keys" form posts to: Prefix/clear.
func (p Page) ClearAction() string { return p.Prefix + "/clear" }
