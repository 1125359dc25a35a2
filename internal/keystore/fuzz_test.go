package keystore

import (
	"bytes"
	"testing"
)

// The keystore payload decoder never panics, and whatever it accepts
// re-encodes to the same bytes.
func FuzzDecodeSecrets(f *testing.F) {
	s, err := Generate("fuzzer")
	if err != nil {
		f.Fatal(err)
	}
	good, err := encodeSecrets(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte("TIKS"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeSecrets(b)
		if err != nil {
			return
		}
		re, err := encodeSecrets(got)
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("accepted %x, re-encodes to %x (%v)", b, re, err)
		}
	})
}
