package main

import (
	"context"
	"fmt"

	"github.com/ginbyok/byok/encrypt"
)

const keygenHelp = `Usage: byok keygen

Prints a new master secret: 32 random bytes from crypto/rand, base64. Put it
in BYOK_SECRET (or a file read with --secret-file). To rotate, move the old
secret to BYOK_PREVIOUS_SECRETS, deploy, then run "byok rotate".
`

// runKeygen prints a new master secret on stdout.
func runKeygen(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("keygen", keygenHelp)
	if err := e.parseFlags(fs, args); err != nil {
		return err
	}
	s, err := encrypt.GenerateSecret()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, s)
	return err
}
