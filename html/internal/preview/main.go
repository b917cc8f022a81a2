// Command preview serves the byok templates with sample data, for looking
// at them in a browser (and taking screenshots) while working on package
// html. It keeps keys in memory, answers the key routes the way the plugin
// does (HTML, htmx fragments, 303 redirects) and sends a strict
// Content-Security-Policy.
//
//	go run ./html/internal/preview -addr 127.0.0.1:8089
//	open /keys?state=empty|filled|error|need|many-alerts|none, /keys, /gallery
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/ginbyok/byok/html/internal/sample"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8089", "listen address")
	flag.Parse()
	h, err := sample.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("preview on http://%s/keys", *addr)
	srv := &http.Server{
		Addr:              *addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	log.Fatal(srv.ListenAndServe())
}
