package byok

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gsessions "github.com/gorilla/sessions"

	"github.com/ginbyok/byok/encrypt"
)

const (
	testSecretA = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
	testSecretB = "3q2+7wAREiIzRFVmd4iZqrvM3e7/ABEiM0RVZneImao="
)

func testCookieStore(t testing.TB, now func() time.Time, secrets ...string) *cookieStore {
	t.Helper()
	ring, err := encrypt.KeyringFromSecrets(secrets[0], secrets[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newCookieStore(now, ring.SessionKeyPairs()...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCookieStoreRoundTrip(t *testing.T) {
	s := testCookieStore(t, time.Now, testSecretA)
	in := map[string]any{"s": "text", "b": []byte{0, 1, 2, 255}, "t": true, "f": false, "i": -42, "big": 1 << 40, "empty": "", "nil-bytes": []byte{}}
	var ents entries
	for k, v := range in {
		ents = append(ents, entry{k, v})
	}
	v, err := s.encode("byok", ents)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.decode("byok", v, 3600)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %v", out)
	}
	for k, want := range in {
		got := out[out.index(k)].val
		if wb, ok := want.([]byte); ok {
			if gb, ok := got.([]byte); !ok || !bytes.Equal(gb, wb) {
				t.Fatalf("%v: %#v, want %#v", k, got, want)
			}
			continue
		}
		if got != want {
			t.Fatalf("%v: %#v, want %#v", k, got, want)
		}
	}
	// Unsupported values are an error, never silently dropped.
	for _, bad := range []entries{{{"x", 1.5}}, {{"x", []string{"a"}}}} {
		if _, err := s.encode("byok", bad); !errors.Is(err, errCookieValue) {
			t.Fatalf("encode(%v): %v", bad, err)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	sess, _ := s.New(r, "byok")
	sess.Values[1] = "int key"
	if err := sess.Save(r, httptest.NewRecorder()); !errors.Is(err, errCookieValue) {
		t.Fatalf("int key: %v", err)
	}
}

func TestCookieStoreRejects(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := testCookieStore(t, clock, testSecretA)
	v, err := s.encode("byok", entries{{"k", "v"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	for i := range raw {
		tampered := bytes.Clone(raw)
		tampered[i] ^= 0x01
		if _, err := s.decode("byok", base64.RawURLEncoding.EncodeToString(tampered), 3600); !errors.Is(err, errCookie) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	if _, err := s.decode("other", v, 3600); !errors.Is(err, errCookie) {
		t.Fatalf("moved to another cookie name: %v", err)
	}
	for _, junk := range []string{"", "!!", "AQ", strings.Repeat("A", 5000)} {
		if _, err := s.decode("byok", junk, 3600); !errors.Is(err, errCookie) {
			t.Fatalf("junk %q: %v", junk, err)
		}
	}
	// Expiry by the issue time inside the seal.
	now = now.Add(3601 * time.Second)
	if _, err := s.decode("byok", v, 3600); !errors.Is(err, errCookieExpired) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := s.decode("byok", v, 0); err != nil {
		t.Fatalf("no max age: %v", err)
	}
	// Another secret does not open it; the new secret with the old one as
	// previous does.
	if _, err := testCookieStore(t, clock, testSecretB).decode("byok", v, 0); !errors.Is(err, errCookie) {
		t.Fatalf("other secret: %v", err)
	}
	if _, err := testCookieStore(t, clock, testSecretB, testSecretA).decode("byok", v, 0); err != nil {
		t.Fatalf("rotated secret: %v", err)
	}
	// Too large for a cookie.
	if _, err := s.encode("byok", entries{{"k", make([]byte, 4000)}}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large: %v", err)
	}
}

func TestCookieStoreSession(t *testing.T) {
	s := testCookieStore(t, time.Now, testSecretA)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	sess, err := s.Get(r, "byok")
	if err != nil || !sess.IsNew {
		t.Fatalf("new session: %v %v", sess, err)
	}
	sess.Values["k"] = "v"
	w := httptest.NewRecorder()
	if err := sess.Save(r, w); err != nil {
		t.Fatal(err)
	}
	c := w.Result().Cookies()
	if len(c) != 1 || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode || c[0].Path != "/" || c[0].MaxAge <= 0 {
		t.Fatalf("cookie %+v", c)
	}
	r2 := httptest.NewRequest(http.MethodGet, "/", nil)
	r2.AddCookie(c[0])
	sess2, err := s.Get(r2, "byok")
	if err != nil || sess2.IsNew || sess2.Values["k"] != "v" {
		t.Fatalf("reloaded: %v %v", sess2.Values, err)
	}
	// MaxAge < 0 deletes the cookie.
	sess2.Options.MaxAge = -1
	w = httptest.NewRecorder()
	if err := s.Save(r2, w, sess2); err != nil {
		t.Fatal(err)
	}
	if c := w.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Fatalf("delete cookie %+v", c)
	}
	var _ gsessions.Store = s
}

func FuzzDecodeEntries(f *testing.F) {
	s := testCookieStore(f, time.Now, testSecretA)
	_ = s
	seed, _ := appendEntries(nil, entries{{"byok.anon", "abc"}, {"byok.keys", []byte{1, 2, 3}}, {"n", 7}, {"t", true}})
	f.Add(seed)
	f.Add([]byte{0})
	f.Add([]byte{1, 1, 'k', 'i', 0x80})
	f.Add([]byte{2, 1, 'a', 's', 0, 1, 'a', 's', 0})
	f.Fuzz(func(t *testing.T, d []byte) {
		m, err := decodeEntries(d)
		if err != nil {
			return
		}
		again, err := appendEntries(nil, m)
		if err != nil {
			t.Fatalf("decoded values do not encode: %v", err)
		}
		m2, err := decodeEntries(again)
		if err != nil || len(m2) != len(m) {
			t.Fatalf("round trip: %v %v", m2, err)
		}
	})
}
