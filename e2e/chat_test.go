package e2e

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
)

func texts(ms []client.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.From + ": " + m.Text
	}
	return out
}

func expectMessages(t *testing.T, got []client.Message, want ...string) {
	t.Helper()
	g := texts(got)
	if len(g) != len(want) {
		t.Fatalf("got %d messages %q, want %q", len(g), g, want)
	}
	for i := range want {
		if g[i] != want[i] {
			t.Fatalf("message %d: got %q, want %q (all: %q)", i, g[i], want[i], g)
		}
		if got[i].State != client.StateReceived {
			t.Fatalf("message %d state %q", i, got[i].State)
		}
	}
}

func TestChatBothWays(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "alice")
	bob, _ := newUser(t, "bob")
	a, b := alice.Handle(), bob.Handle()
	for _, text := range []string{"hello bob", "second", "third"} {
		m, err := alice.Send(ctx, "@"+b, text)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		if m.State != client.StateStored || len(m.ID) != 32 {
			t.Fatalf("sent message: %+v", m)
		}
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectMessages(t, got, a+": hello bob", a+": second", a+": third")
	// A second sync finds nothing new: the node deleted what bob acknowledged.
	if again, err := bob.Sync(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second sync: %d messages, %v", len(again), err)
	}
	if _, err := bob.Send(ctx, a, "hi alice"); err != nil {
		t.Fatal(err)
	}
	got, err = alice.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectMessages(t, got, b+": hi alice")
}

func TestLiveDelivery(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "alice")
	bob, _ := newUser(t, "bob")
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	arrived := make(chan client.Message, 4)
	done := make(chan error, 1)
	go func() { done <- bob.Listen(lctx, func(m client.Message) { arrived <- m }) }()
	// Let the stream reach the node before sending: the first message then
	// arrives live rather than from the backlog (either way it must arrive).
	time.Sleep(200 * time.Millisecond)
	if _, err := alice.Send(ctx, bob.Handle(), "live one"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-arrived:
		if m.Text != "live one" || m.From != alice.Handle() {
			t.Fatalf("got %+v", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("message not delivered on the open stream")
	}
	// The live stream acknowledges it (on its AckStream) while it stays
	// open: the node deletes it without waiting for the stream to end.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		waiting, err := tn.n.Relay().Read(bob.Handle(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(waiting) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d envelopes still waiting for bob while his stream is live", len(waiting))
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("listen: %v", err)
	}
}

// The recipient is offline while messages arrive and the node restarts in
// between; nothing acknowledged is lost, order holds, and the node's data
// directory never holds a plaintext.
func TestOfflineRecipientAcrossRestart(t *testing.T) {
	ctx := ctxT(t)
	carol, _ := newUser(t, "carol")
	daveHome := t.TempDir()
	dave, err := client.Create(ctx, cfg(daveHome), uniqueHandle("dave"))
	if err != nil {
		t.Fatal(err)
	}
	d := dave.Handle()
	dave.Close() // offline

	secrets := []string{"plaintext-canary-one", "plaintext-canary-two", "plaintext-canary-three"}
	for _, s := range secrets[:2] {
		if _, err := carol.Send(ctx, d, s); err != nil {
			t.Fatal(err)
		}
	}
	tn.restart(t)
	if _, err := carol.Send(ctx, d, secrets[2]); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	dave, err = client.Open(ctx, cfg(daveHome))
	if err != nil {
		t.Fatal(err)
	}
	defer dave.Close()
	got, err := dave.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := carol.Handle()
	expectMessages(t, got, c+": "+secrets[0], c+": "+secrets[1], c+": "+secrets[2])
	assertNoPlaintext(t, tn.n.DataDir(), secrets)
	// The client's history is encrypted at rest too.
	assertNoPlaintext(t, daveHome, secrets)
}

func assertNoPlaintext(t *testing.T, dir string, secrets []string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains the plaintext %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no files scanned")
	}
}

// Delivery receipts: once bob's device has alice's 1:1 messages, alice's
// history shows them delivered; a group post stays stored (no receipts in
// groups), and the receipts themselves show in neither history.
func TestDeliveryReceipts(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "dra")
	bob, _ := newUser(t, "drb")
	var ids []string
	for _, text := range []string{"one", "two"} {
		m, err := alice.Send(ctx, bob.Handle(), text)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	group := uniqueHandle("rcpt")
	if err := alice.CreateGroup(ctx, group, []string{bob.Handle()}, ""); err != nil {
		t.Fatal(err)
	}
	post, err := alice.SendGroup(ctx, group, "to the group")
	if err != nil {
		t.Fatal(err)
	}
	state := func(id string) string {
		t.Helper()
		hist, err := alice.History(func(m *client.Message) bool { return m.ID == id })
		if err != nil || len(hist) != 1 {
			t.Fatalf("alice's message %s: %v %v", id, hist, err)
		}
		return hist[0].State
	}
	if state(ids[0]) != client.StateStored {
		t.Fatalf("before bob read: %s", state(ids[0]))
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := alice.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("alice's sync returned bob's receipts as messages: %+v", got)
	}
	for _, id := range ids {
		if s := state(id); s != client.StateDelivered {
			t.Fatalf("message %s after bob read it: %s", id, s)
		}
	}
	if s := state(post.ID); s != client.StateStored {
		t.Fatalf("a group post after bob read it: %s", s)
	}
	if hist, err := bob.History(func(m *client.Message) bool { return m.Outgoing }); err != nil || len(hist) != 0 {
		t.Fatalf("bob's history shows what he sent: %+v %v", hist, err)
	}
}
