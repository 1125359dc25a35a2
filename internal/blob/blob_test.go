package blob

import (
	"crypto/sha256"
	"errors"
	"testing"
)

func TestPutGet(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("ciphertext chunk")
	h := sha256.Sum256(data)
	if err := s.Put(h[:], []byte("other bytes")); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	if err := s.Put(h[:], make([]byte, MaxChunk+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if _, err := s.Get(h[:]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := s.Put(h[:], data); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(h[:])
	if err != nil || string(got) != string(data) {
		t.Fatalf("after reopen: %q %v", got, err)
	}
	if ok, _ := s.Has(h[:]); !ok {
		t.Fatal("Has = false")
	}
	s.PutUnchecked(h[:], []byte("rotten"))
	if _, err := s.Get(h[:]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt chunk served: %v", err)
	}
}

func TestCapsAndDelete(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	full := make([]byte, MaxChunk)
	h := sha256.Sum256(full)
	if err := s.Put(h[:], full); err != nil {
		t.Fatalf("chunk of exactly MaxChunk bytes: %v", err)
	}
	if err := s.Put(h[:16], full); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("short name: %v", err)
	}
	if ok, err := s.Has(h[:]); !ok || err != nil {
		t.Fatalf("Has = %v, %v", ok, err)
	}
	if err := s.Delete(h[:]); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(h[:]); ok {
		t.Fatal("deleted chunk still there")
	}
	if _, err := s.Get(h[:]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted chunk: %v", err)
	}
}
