package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenim/tokenim/client"
)

// A 5 MiB file goes alice → bob: encrypted chunks on the node, the key
// inside the E2EE message, every chunk verified on the way back.
func TestFileRoundTrip(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "liz")
	bob, _ := newUser(t, "max")
	data := make([]byte, 5<<20+123)
	rand.Read(data)
	canary := "FILE-PLAINTEXT-CANARY"
	copy(data[1000:], canary)
	src := filepath.Join(t.TempDir(), "report.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var last int64
	m, err := alice.SendFile(ctx, bob.Handle(), src, func(done, total int64) { last = done })
	if err != nil {
		t.Fatal(err)
	}
	if last != int64(len(data)) || m.File == nil || m.File.Size != uint64(len(data)) {
		t.Fatalf("send progress %d, message %+v", last, m)
	}
	got, err := bob.Sync(ctx)
	if err != nil || len(got) != 1 || got[0].File == nil || got[0].File.Name != "report.bin" {
		t.Fatalf("bob got %+v, %v", got, err)
	}
	out := t.TempDir()
	path, err := bob.FetchFile(ctx, got[0].ID, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(back, data) || filepath.Base(path) != "report.bin" {
		t.Fatalf("downloaded %d bytes to %s (%v)", len(back), path, err)
	}
	assertNoPlaintext(t, tn.n.DataDir(), []string{canary})
	if _, err := bob.FetchFile(ctx, "nope", out, nil); err == nil {
		t.Fatal("fetched a file from a message that has none")
	}
	big := filepath.Join(t.TempDir(), "big")
	f, _ := os.Create(big)
	f.Truncate(client.MaxFileSize + 1)
	f.Close()
	if _, err := alice.SendFile(ctx, bob.Handle(), big, nil); !errors.Is(err, client.ErrFileTooLarge) {
		t.Fatalf("file over the cap: %v", err)
	}
}

// A chunk that rots on the node's disk (the only replica here) fails the
// download with ErrFileCorrupt and leaves nothing behind; once an intact
// copy is back, the same download succeeds. A rotten manifest fails too.
func TestFileCorruptChunk(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "rot_a")
	bob, _ := newUser(t, "rot_b")
	data := make([]byte, 1<<20+77) // two chunks and a manifest
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(src, data, 0o600)
	blobs := tn.n.Blobs()
	before, err := blobs.Hashes()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendFile(ctx, bob.Handle(), src, nil); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Sync(ctx)
	if err != nil || len(got) != 1 || got[0].File == nil {
		t.Fatalf("bob got %+v, %v", got, err)
	}
	after, _ := blobs.Hashes()
	old := map[string]bool{}
	for _, h := range before {
		old[string(h)] = true
	}
	var fresh [][]byte
	for _, h := range after {
		if !old[string(h)] {
			fresh = append(fresh, h)
		}
	}
	if len(fresh) != 3 {
		t.Fatalf("%d new chunks on the node, want 3", len(fresh))
	}
	out := t.TempDir()
	for _, h := range fresh {
		orig, err := blobs.Get(h)
		if err != nil {
			t.Fatal(err)
		}
		rotten := bytes.Clone(orig)
		rotten[len(rotten)/2] ^= 1
		blobs.PutUnchecked(h, rotten)
		_, err = bob.FetchFile(ctx, got[0].ID, out, nil)
		if !errors.Is(err, client.ErrFileCorrupt) {
			t.Fatalf("chunk %x (manifest: %v) rotten: %v", h[:4], hex.EncodeToString(h) == got[0].File.ManifestHash, err)
		}
		if left, _ := os.ReadDir(out); len(left) != 0 {
			t.Fatalf("a failed download left %v", left)
		}
		if err := blobs.Put(h, orig); err != nil {
			t.Fatal(err)
		}
	}
	path, err := bob.FetchFile(ctx, got[0].ID, out, nil)
	if back, _ := os.ReadFile(path); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("after repair: %v", err)
	}
}
