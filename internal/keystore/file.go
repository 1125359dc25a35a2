package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"filippo.io/age"
)

// FileName is the keystore's file name inside the account directory.
const FileName = "keystore.age"

const (
	// DefaultWorkFactor is the scrypt work factor (log2 N) Create uses when
	// Options.WorkFactor is zero: about a second on a laptop.
	DefaultWorkFactor = 18
	// MaxWorkFactor is the largest work factor Create accepts and Load
	// is willing to compute.
	MaxWorkFactor = 22
	// maxFileSize caps what Load reads; a keystore is a few hundred bytes.
	maxFileSize = 64 << 10
)

// Options tune Create.
type Options struct {
	// WorkFactor is scrypt's log2 N, 1..MaxWorkFactor; zero means
	// DefaultWorkFactor. Tests use a low value such as 10.
	WorkFactor int
}

// Exists reports whether dir holds a keystore file.
func Exists(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, FileName))
	return err == nil
}

// Create encrypts s under passphrase and writes it to <dir>/keystore.age,
// creating dir (mode 0700) if needed. It fails with ErrExists if a keystore
// is already there; it never overwrites one.
func Create(dir string, s *Secrets, passphrase []byte, opts Options) error {
	if len(passphrase) == 0 {
		return ErrEmptyPassphrase
	}
	wf := opts.WorkFactor
	if wf == 0 {
		wf = DefaultWorkFactor
	}
	if wf < 1 || wf > MaxWorkFactor {
		return fmt.Errorf("%w: work factor %d not in 1..%d", ErrInvalid, wf, MaxWorkFactor)
	}
	plain, err := encodeSecrets(s)
	if err != nil {
		return err
	}
	defer clear(plain)
	if Exists(dir) {
		return ErrExists
	}
	rcpt, err := age.NewScryptRecipient(string(passphrase))
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	rcpt.SetWorkFactor(wf)
	var out bytes.Buffer
	w, err := age.Encrypt(&out, rcpt)
	if err != nil {
		return fmt.Errorf("keystore: encrypt: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return fmt.Errorf("keystore: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("keystore: encrypt: %w", err)
	}
	return writeNew(dir, FileName, out.Bytes())
}

// Load decrypts the keystore in dir. It returns ErrNotFound when there is
// none, ErrWrongPassphrase when passphrase does not open it, and ErrCorrupt
// for any other damage.
func Load(dir string, passphrase []byte) (*Secrets, error) {
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	data, err := readCapped(filepath.Join(dir, FileName))
	if err != nil {
		return nil, err
	}
	id, err := age.NewScryptIdentity(string(passphrase))
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	id.SetMaxWorkFactor(MaxWorkFactor)
	r, err := age.Decrypt(bytes.NewReader(data), id)
	if err != nil {
		return nil, classify(err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, int64(maxPlaintext)+1))
	defer clear(plain)
	if err != nil || len(plain) > maxPlaintext {
		return nil, ErrCorrupt
	}
	return decodeSecrets(plain)
}

// classify maps an age.Decrypt error to ErrWrongPassphrase or ErrCorrupt.
// Only a file whose sole recipient is an scrypt stanza that the passphrase
// fails to open counts as a wrong passphrase.
func classify(err error) error {
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) && slices.Equal(nm.StanzaTypes, []string{"scrypt"}) {
		return ErrWrongPassphrase
	}
	return ErrCorrupt
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keystore: read: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, ErrCorrupt
	}
	return data, nil
}
