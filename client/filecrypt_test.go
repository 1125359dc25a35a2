package client

import (
	"bytes"
	"errors"
	"testing"
)

func TestChunkCrypto(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	pt := []byte("a chunk of a file")
	ct, err := sealChunk(key, 3, pt)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openChunk(key, 3, ct); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("round trip: %v", err)
	}
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 1
		if _, err := openChunk(key, 3, bad); !errors.Is(err, ErrFileCorrupt) {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if _, err := openChunk(key, 4, ct); !errors.Is(err, ErrFileCorrupt) {
		t.Fatal("chunk moved to another position accepted")
	}
	if _, err := openChunk(bytes.Repeat([]byte{8}, 32), 3, ct); !errors.Is(err, ErrFileCorrupt) {
		t.Fatal("wrong key accepted")
	}
	if _, err := openChunk(key, manifestIndex, ct); err == nil {
		t.Fatal("a chunk opened as the manifest")
	}
}
