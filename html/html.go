// Package html holds the byok user interface as embedded html/template
// partials (daisyUI 5 classes, htmx attributes, no inline script), with the
// static files they need and the view model the plugin fills.
//
// Every template is named "byok/…". A host adds them to its own set with
// AddTo and overrides any of them by parsing a template of the same name
// afterwards; the plugin builds its own set with New, reading override files
// after the embedded ones.
package html

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ErrUnknownTemplate is returned by Render when the set has no template of
// the given name.
var ErrUnknownTemplate = errors.New("html: unknown template")

// Assets returns the static files the templates link to: byok.css,
// byok.js and htmx.min.js. Serve them under Page.AssetsPath, e.g. with
// http.FileServerFS(html.Assets()).
func Assets() fs.FS {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil { // cannot happen: "static" is a valid, embedded directory
		panic(err)
	}
	return sub
}

// assetVersions maps each static file to a short hash of its content, for
// cache-busting asset URLs.
var assetVersions = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	_ = fs.WalkDir(Assets(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Assets(), p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[p] = hex.EncodeToString(sum[:6])
		return nil
	})
	return m
})

// assetURL returns base/name with a "?v=" content hash when name is one of
// the embedded static files.
func assetURL(base, name string) string {
	u := strings.TrimSuffix(base, "/") + "/" + name
	if v, ok := assetVersions()[name]; ok {
		u += "?v=" + v
	}
	return u
}

// fileNames returns the template each embedded file defines: the file
// templates/NAME.tmpl defines "byok/NAME" (and may define helpers).
func fileNames() []string {
	entries, _ := fs.ReadDir(templateFS, "templates") // embedded: cannot fail
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, "byok/"+strings.TrimSuffix(e.Name(), ".tmpl"))
	}
	return names
}

// names lists every template the embedded files define.
var names = sync.OnceValue(func() []string {
	t, err := AddTo(template.New("byok"))
	if err != nil { // embedded templates are tested to parse
		return fileNames()
	}
	var out []string
	for _, tt := range t.Templates() {
		if strings.HasPrefix(tt.Name(), "byok/") {
			out = append(out, tt.Name())
		}
	}
	slices.Sort(out)
	return out
})

// Names returns the names of all embedded templates, sorted: the partials
// (byok/page, byok/key-card, …) and the helpers they call (byok/key-badge,
// byok/alert-kind, …). Any of them can be overridden.
func Names() []string { return slices.Clone(names()) }

// AddTo adds FuncMap and every embedded byok/… template to t and returns
// t. Templates of t with a byok/… name are replaced; to override one, parse
// your own definition after AddTo. It fails when t has already been
// executed.
func AddTo(t *template.Template) (*template.Template, error) {
	if t == nil {
		return nil, errors.New("html: AddTo: nil template")
	}
	t.Funcs(FuncMap())
	for _, name := range fileNames() {
		file := "templates/" + strings.TrimPrefix(name, "byok/") + ".tmpl"
		b, err := fs.ReadFile(templateFS, file)
		if err != nil {
			return nil, fmt.Errorf("html: read %s: %w", file, err)
		}
		// The file's own (empty) top-level template takes the name the
		// file defines, so parsing adds no other name to the host's set.
		if _, err := t.New(name).Parse(string(b)); err != nil {
			return nil, fmt.Errorf("html: parse %s: %w", file, err)
		}
	}
	return t, nil
}

// New returns a template set holding the embedded templates, then every
// *.tmpl file of overrides (walked recursively; nil for none): a file that
// defines a byok/… name replaces the embedded template of that name. The
// set's own name is "byok".
func New(overrides fs.FS) (*template.Template, error) {
	t, err := AddTo(template.New("byok"))
	if err != nil {
		return nil, err
	}
	if overrides == nil {
		return t, nil
	}
	err = fs.WalkDir(overrides, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".tmpl" {
			return nil
		}
		b, err := fs.ReadFile(overrides, p)
		if err != nil {
			return err
		}
		// Like ParseFS, the file's top level becomes a template named
		// after the file; its {{define}}s replace same-named templates.
		if _, err := t.New("override:" + p).Parse(string(b)); err != nil {
			return fmt.Errorf("parse override %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("html: overrides: %w", err)
	}
	return t, nil
}

// bufPool holds render buffers; buffers that grew past maxPooled are
// dropped rather than kept.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooled = 256 << 10

// Render executes the named template of t with data into a pooled buffer
// and writes the result to w only when execution succeeded, so an error
// never sends half a page. The error wraps ErrUnknownTemplate when t has no
// such template.
func Render(w io.Writer, t *template.Template, name string, data any) error {
	if t == nil || t.Lookup(name) == nil {
		return fmt.Errorf("%w: %q", ErrUnknownTemplate, name)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooled {
			bufPool.Put(buf)
		}
	}()
	if err := t.ExecuteTemplate(buf, name, data); err != nil {
		return fmt.Errorf("html: render %q: %w", name, err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("html: write %q: %w", name, err)
	}
	return nil
}
