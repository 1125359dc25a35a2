package blob

import (
	"bytes"
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

// A chunk keeps the latest expiry any store asked for, or none if one asked
// for none; Expire deletes exactly the chunks due.
func TestExpiry(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunk := func(b byte) ([]byte, []byte) {
		d := bytes.Repeat([]byte{b}, 100)
		h := sha256.Sum256(d)
		return h[:], d
	}
	ha, a := chunk('a') // 1000, then 3000: expires at 3000
	hb, b := chunk('b') // 2000, then kept
	hc, c := chunk('c') // kept, then 500: kept
	hd, d := chunk('d') // 1500
	for _, p := range []struct {
		h, d []byte
		exp  int64
	}{{ha, a, 1000}, {ha, a, 3000}, {hb, b, 2000}, {hb, b, 0}, {hc, c, 0}, {hc, c, 500}, {hd, d, 1500}} {
		if err := s.PutExpiring(p.h, p.d, p.exp); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutExpiring(ha, b, 10); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("wrong bytes: %v", err)
	}
	for _, w := range []struct {
		h   []byte
		exp int64
	}{{ha, 3000}, {hb, 0}, {hc, 0}, {hd, 1500}} {
		if got, err := s.Expiry(w.h); err != nil || got != w.exp {
			t.Fatalf("expiry %x: %d %v, want %d", w.h[:4], got, err, w.exp)
		}
	}
	if n, err := s.Expire(1499); err != nil || n != 0 {
		t.Fatalf("Expire(1499): %d %v", n, err)
	}
	if n, err := s.Expire(2999); err != nil || n != 1 {
		t.Fatalf("Expire(2999): %d %v", n, err)
	}
	if ok, _ := s.Has(hd); ok {
		t.Fatal("d kept after its expiry")
	}
	if n, err := s.Expire(1 << 50); err != nil || n != 1 {
		t.Fatalf("Expire(later): %d %v", n, err)
	}
	for _, h := range [][]byte{hb, hc} {
		if ok, _ := s.Has(h); !ok {
			t.Fatalf("kept chunk %x deleted", h[:4])
		}
	}
	if ok, _ := s.Has(ha); ok {
		t.Fatal("a kept after its expiry")
	}
}
