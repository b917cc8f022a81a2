package app_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/ginbyok/byok/example/app"
)

// New builds the whole example app as one http.Handler: here on its
// embedded default (an SQLite file and a generated secret in a data dir,
// cookie sessions).
func ExampleNew() {
	dir, err := os.MkdirTemp("", "byok-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	handler, release, err := app.New(context.Background(), app.Config{
		DataDir: dir,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer release()

	srv := httptest.NewServer(handler)
	defer srv.Close()
	// A guarded page sends a visitor without a key to the key form.
	res, err := http.Get(srv.URL + "/demo/openai")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.Request.URL.Path, res.Request.URL.Query().Get("need"))
	// Output: /keys openai
}
