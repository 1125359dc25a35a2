package keystore

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mau.fi/libsignal/keys/identity"
)

var (
	testPass = []byte("correct horse battery staple")
	testOpts = Options{WorkFactor: 10}
)

func newSecrets(t *testing.T) *Secrets {
	t.Helper()
	s, err := Generate("alice")
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

func sameSecrets(a, b *Secrets) bool {
	ap, apub, _ := identityBytes(a.IdentityKeyPair)
	bp, bpub, _ := identityBytes(b.IdentityKeyPair)
	return a.Handle == b.Handle && bytes.Equal(a.AccountKey, b.AccountKey) &&
		ap == bp && apub == bpub && a.RegistrationID == b.RegistrationID &&
		a.StorageKey == b.StorageKey
}

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "acct")
	s := newSecrets(t)
	if Exists(dir) {
		t.Fatal("Exists before Create")
	}
	if err := Create(dir, s, testPass, testOpts); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !Exists(dir) {
		t.Fatal("Exists after Create = false")
	}
	got, err := Load(dir, testPass)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !sameSecrets(s, got) {
		t.Fatal("loaded secrets differ from created ones")
	}
	if s.RegistrationID < 1 || s.RegistrationID > maxRegistrationID {
		t.Fatalf("registration id %d out of range", s.RegistrationID)
	}
	assertMode(t, dir, 0o700)
	assertMode(t, filepath.Join(dir, FileName), 0o600)
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Fatalf("%s mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir, testPass); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load missing: got %v, want ErrNotFound", err)
	}
	if err := Create(dir, newSecrets(t), testPass, testOpts); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, []byte("wrong passphrase")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Load wrong passphrase: got %v, want ErrWrongPassphrase", err)
	}
	if _, err := Load(dir, nil); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("Load empty passphrase: got %v, want ErrEmptyPassphrase", err)
	}
	if err := Create(dir, newSecrets(t), testPass, testOpts); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("not an age file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, testPass); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load garbage: got %v, want ErrCorrupt", err)
	}
}

func TestCreateRejectsInvalid(t *testing.T) {
	bad := []struct {
		name string
		mut  func(*Secrets)
		opts Options
	}{
		{"empty handle", func(s *Secrets) { s.Handle = "" }, testOpts},
		{"long handle", func(s *Secrets) { s.Handle = strings.Repeat("a", MaxHandleLen+1) }, testOpts},
		{"short account key", func(s *Secrets) { s.AccountKey = s.AccountKey[:32] }, testOpts},
		{"mismatched account key", func(s *Secrets) { s.AccountKey[40] ^= 1 }, testOpts},
		{"nil identity", func(s *Secrets) { s.IdentityKeyPair = nil }, testOpts},
		{"mismatched identity", func(s *Secrets) {
			s.IdentityKeyPair = identity.NewKeyPair(newSecrets(t).IdentityKeyPair.PublicKey(), s.IdentityKeyPair.PrivateKey())
		}, testOpts},
		{"work factor", func(*Secrets) {}, Options{WorkFactor: MaxWorkFactor + 1}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s := newSecrets(t)
			tc.mut(s)
			dir := t.TempDir()
			if err := Create(dir, s, testPass, tc.opts); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if Exists(dir) {
				t.Fatal("file written for invalid secrets")
			}
		})
	}
}

func TestTamper(t *testing.T) {
	dir := t.TempDir()
	if err := Create(dir, newSecrets(t), testPass, testOpts); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	try := func(what string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir, testPass); err == nil {
			t.Fatalf("%s: Load accepted a damaged file", what)
		}
	}
	for i := range orig {
		flipped := bytes.Clone(orig)
		flipped[i] ^= 0x01
		try(fmt.Sprintf("flip byte %d", i), flipped)
	}
	for n := 0; n < len(orig); n++ {
		try(fmt.Sprintf("truncate to %d", n), orig[:n])
	}
	try("trailing byte", append(bytes.Clone(orig), 0))
}

func TestDecodeRejects(t *testing.T) {
	s := newSecrets(t)
	good, err := encodeSecrets(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeSecrets(good); err != nil {
		t.Fatalf("decode good: %v", err)
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		got, err := decodeSecrets(b)
		if err == nil && sameSecrets(s, got) {
			t.Fatalf("flip %d: decoded to the original secrets", i)
		}
		// The handle, the Ed25519 seed, the registration id and the storage
		// key have no redundancy (age authenticates them); every other
		// byte is checked by the decoder.
		seedEnd := len(magic) + 2 + len(s.Handle) + 32
		free := i >= len(magic)+2 && i < seedEnd || i >= len(good)-36
		if err == nil && !free {
			t.Fatalf("flip %d: accepted", i)
		}
	}
}

func TestNoKeyBytesPrinted(t *testing.T) {
	s := newSecrets(t)
	priv, _, _ := identityBytes(s.IdentityKeyPair)
	secrets := [][]byte{s.AccountKey, s.AccountKey.Seed(), priv[:], s.StorageKey[:]}
	outs := []string{
		fmt.Sprintf("%v %+v %s %#v", s, s, s, s),
		fmt.Sprintf("%v %+v %s %#v %x %q %d", *s, *s, *s, *s, *s, *s, *s),
		fmt.Sprint(s, *s), fmt.Sprintln(s), s.String(), s.GoString(),
		fmt.Sprintf("%v", struct{ S *Secrets }{s}),
		fmt.Sprintf("%+v", []Secrets{*s}),
	}
	for _, out := range outs {
		if !strings.Contains(out, "redacted") {
			t.Fatalf("output not redacted: %q", out)
		}
		for _, k := range secrets {
			for _, enc := range []string{
				hex.EncodeToString(k), strings.ToUpper(hex.EncodeToString(k)),
				base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k),
				fmt.Sprint(k), fmt.Sprint(k[:8]), string(k),
			} {
				if strings.Contains(out, enc) {
					t.Fatalf("output %q contains key bytes", out)
				}
			}
		}
	}
}

func TestWipe(t *testing.T) {
	s := newSecrets(t)
	s.Wipe()
	if !bytes.Equal(s.AccountKey, make([]byte, len(s.AccountKey))) || s.StorageKey != [32]byte{} || s.IdentityKeyPair != nil {
		t.Fatal("Wipe left key material")
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	// A second Lock opens a new file description, so flock must refuse it
	// even though this process holds the first one.
	if _, err := Lock(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: got %v, want ErrLocked", err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	unlock2, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	if err := unlock2(); err != nil {
		t.Fatal(err)
	}
}
