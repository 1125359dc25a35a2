package e2e

import (
	"bytes"
	"crypto/rand"
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
