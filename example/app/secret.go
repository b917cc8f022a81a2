package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ginbyok/byok/encrypt"
)

// secretSource is the master secret and where it came from.
type secretSource struct {
	value  string
	source string // "BYOK_SECRET", "generated" or "file"
	path   string // the file, when it came from one
}

// resolveSecret returns Config.Secret when set, else the secret in
// DataDir/secret, generating that file (0600) on first start. Either way the
// secret is checked here, so a bad one fails with a clear error before
// anything else starts.
func resolveSecret(cfg Config) (secretSource, error) {
	for i, s := range cfg.PreviousSecrets {
		if _, err := encrypt.ParseSecret(s); err != nil {
			return secretSource{}, fmt.Errorf("%w: %s, entry %d: %w", ErrConfig, EnvPreviousSecrets, i+1, err)
		}
	}
	if cfg.Secret != "" {
		if _, err := encrypt.ParseSecret(cfg.Secret); err != nil {
			return secretSource{}, fmt.Errorf("%w: %s: %w", ErrConfig, EnvSecret, err)
		}
		return secretSource{value: cfg.Secret, source: EnvSecret}, nil
	}
	path := filepath.Join(cfg.DataDir, SecretFile)
	value, created, err := loadOrCreateSecret(path)
	if err != nil {
		return secretSource{}, err
	}
	src := secretSource{value: value, source: "file", path: path}
	if created {
		src.source = "generated"
	}
	return src, nil
}

// loadOrCreateSecret reads the secret in path, or writes a new one there
// (encrypt.GenerateSecret) when the file does not exist. The new file is
// written whole under a temporary name and then linked into place, so two
// processes starting at once agree on one secret and nobody ever reads half
// a file. It reports whether it created the file.
func loadOrCreateSecret(path string) (string, bool, error) {
	if s, err := readSecret(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("example: creating the data dir: %w", err)
	}
	secret, err := encrypt.GenerateSecret()
	if err != nil {
		return "", false, fmt.Errorf("example: generating a secret: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".secret-*")
	if err != nil {
		return "", false, fmt.Errorf("example: writing the secret: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	// CreateTemp makes the file 0600; say so anyway, whatever the umask.
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return "", false, fmt.Errorf("example: writing the secret: %w", err)
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		_ = tmp.Close()
		return "", false, fmt.Errorf("example: writing the secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return "", false, fmt.Errorf("example: writing the secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", false, fmt.Errorf("example: writing the secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race
			s, err := readSecret(path)
			return s, false, err
		}
		return "", false, fmt.Errorf("example: writing the secret: %w", err)
	}
	return secret, true, nil
}

// readSecret reads and checks the secret file. A file that others may read
// is refused: the secret opens every stored key.
func readSecret(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("example: reading the secret: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%w: the secret file %s has mode %04o; it must be readable by its owner only (chmod 600 %s)",
			ErrConfig, path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("example: reading the secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if _, err := encrypt.ParseSecret(s); err != nil {
		return "", fmt.Errorf("%w: the secret file %s: %w", ErrConfig, path, err)
	}
	return s, nil
}
