package e2enet

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenim/tokenim/internal/blob"
)

// A file sent across nodes arrives intact although one replica's copy of a
// chunk is corrupt: the hash check catches it and another replica serves.
func TestFileAcrossNodesWithACorruptReplica(t *testing.T) {
	ctx := ctxT(t)
	alice := newUser(t, "alicef", 0)
	bob := newUser(t, "bobf", 2)
	data := make([]byte, 3<<20+5)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "photo.raw")
	os.WriteFile(src, data, 0o600)
	if _, err := alice.SendFile(ctx, bob.Handle(), src, nil); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Sync(ctx)
	if err != nil || len(got) != 1 || got[0].File == nil {
		t.Fatalf("bob got %+v, %v", got, err)
	}
	// Corrupt every chunk on node2 (bob's node) and on node0: with three
	// replicas per chunk, at least one intact copy remains of each.
	corrupted := corruptAll(t, net4.nodes[2].Blobs()) + corruptAll(t, net4.nodes[0].Blobs())
	if corrupted == 0 {
		t.Fatal("found no chunk to corrupt")
	}
	path, err := bob.FetchFile(ctx, got[0].ID, t.TempDir(), nil)
	if err != nil {
		t.Fatalf("download with %d corrupt copies: %v", corrupted, err)
	}
	if back, _ := os.ReadFile(path); !bytes.Equal(back, data) {
		t.Fatal("downloaded bytes differ")
	}
}

func corruptAll(t *testing.T, s *blob.Store) int {
	t.Helper()
	hashes, err := s.Hashes()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hashes {
		if err := s.PutUnchecked(h, []byte("bit rot")); err != nil {
			t.Fatal(err)
		}
	}
	return len(hashes)
}
