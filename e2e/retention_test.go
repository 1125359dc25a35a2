package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
)

// With a 2-second retention policy, a group message is deleted from the
// node (before its recipient ever fetched it) and from the sender's history.
func TestRetentionExpiresEverywhere(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "rea")
	bob, _ := newUser(t, "reb")
	pol := uniqueHandle("twosec")
	if _, err := alice.DeployPolicy(ctx, pol, `retention = duration("2s")`); err != nil {
		t.Fatal(err)
	}
	group := uniqueHandle("flash")
	if err := alice.CreateGroup(ctx, group, []string{bob.Handle()}, pol); err != nil {
		t.Fatal(err)
	}
	before := tn.n.StoredEnvelopes()
	m, err := alice.SendGroup(ctx, group, "this will self-destruct")
	if err != nil {
		t.Fatal(err)
	}
	if m.ExpiresAt.IsZero() || m.ExpiresAt.Sub(m.SentAt) != 2*time.Second {
		t.Fatalf("sender's copy expires at %v (sent %v)", m.ExpiresAt, m.SentAt)
	}
	// Stored for bob: the sender key (1:1, kept) and the group message.
	stored := tn.n.StoredEnvelopes()
	if stored < before+2 {
		t.Fatalf("stored %d → %d", before, stored)
	}
	// The sweeper runs every second; give it the retention and two rounds.
	deadline := time.Now().Add(10 * time.Second)
	for tn.n.StoredEnvelopes() > stored-1 {
		if time.Now().After(deadline) {
			t.Fatalf("the expired envelope is still on the node (%d stored)", tn.n.StoredEnvelopes())
		}
		time.Sleep(100 * time.Millisecond)
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		if g.Group == group && g.State == client.StateReceived {
			t.Fatalf("bob received an expired message: %+v", g)
		}
	}
	hist, _ := alice.History(func(m *client.Message) bool { return m.Group == group && m.Outgoing })
	if len(hist) != 0 {
		t.Fatalf("alice still shows the expired message: %+v", hist)
	}
}

// A 1:1 conversation with a policy attached by either party: short
// retention deletes messages on the node and in the sender's history; a
// size limit refuses a long message with the rule.
func TestConversationPolicy(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "cpa")
	bob, _ := newUser(t, "cpb")
	pol := uniqueHandle("brief")
	if _, err := bob.DeployPolicy(ctx, pol, "retention = duration(\"2s\")\nmax_size = 600"); err != nil {
		t.Fatal(err)
	}
	if err := bob.AttachPolicy(ctx, "@"+alice.Handle(), pol); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, bob.Handle(), strings.Repeat("long ", 200)); !errors.Is(err, client.ErrDenied) || !strings.Contains(err.Error(), "max_size") {
		t.Fatalf("long message: %v", err)
	}
	stored := tn.n.StoredEnvelopes()
	m, err := alice.Send(ctx, bob.Handle(), "gone soon")
	if err != nil {
		t.Fatal(err)
	}
	if m.ExpiresAt.Sub(m.SentAt) != 2*time.Second {
		t.Fatalf("sender's copy expires %v after sending", m.ExpiresAt.Sub(m.SentAt))
	}
	// Bob's mailbox holds only it (the policy notice went to alice, and
	// expires on its own time).
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := tn.n.Relay().Read(bob.Handle(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 && tn.n.StoredEnvelopes() <= stored {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expired 1:1 envelope is still on the node")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, _ := bob.Sync(ctx); len(got) != 0 {
		t.Fatalf("bob received expired messages: %+v", got)
	}
	if hist, _ := alice.History(func(m *client.Message) bool {
		return m.Outgoing && m.To == bob.Handle() && m.State == client.StateStored
	}); len(hist) != 0 {
		t.Fatalf("alice still shows it: %+v", hist)
	}
	if err := alice.AttachPolicy(ctx, bob.Handle(), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, bob.Handle(), strings.Repeat("long ", 200)); err != nil {
		t.Fatalf("after detaching: %v", err)
	}
}

// A file shared in a group with a short retention: members download it
// while it lives; then every chunk is gone from the node (the sweeper
// deletes chunks with the messages) and a download fails.
func TestGroupFileExpires(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "gfa")
	bob, _ := newUser(t, "gfb")
	pol := uniqueHandle("threesec")
	if _, err := alice.DeployPolicy(ctx, pol, `retention = duration("3s")`); err != nil {
		t.Fatal(err)
	}
	group := uniqueHandle("drop")
	if err := alice.CreateGroup(ctx, group, []string{bob.Handle()}, pol); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "plan.bin")
	data := make([]byte, 1<<20+4321) // two chunks and a manifest
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sent, err := alice.SendGroupFile(ctx, group, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := hex.DecodeString(sent.File.ManifestHash)
	exp, err := tn.n.Blobs().Expiry(manifest)
	if err != nil || exp == 0 || time.UnixMilli(exp).Sub(sent.SentAt) > 4*time.Second {
		t.Fatalf("manifest chunk expiry %d (sent %v): %v", exp, sent.SentAt, err)
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, m := range got {
		if m.Group == group && m.File != nil {
			id = m.ID
		}
	}
	if id == "" {
		t.Fatalf("bob did not get the file message: %+v", got)
	}
	dest, err := bob.FetchFile(ctx, id, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dest); !bytes.Equal(b, data) {
		t.Fatal("downloaded file differs")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := tn.n.Blobs().Has(manifest)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the file's chunks outlived the retention")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := bob.FetchFile(ctx, id, t.TempDir(), nil); err == nil {
		t.Fatal("an expired file downloaded")
	}
}
