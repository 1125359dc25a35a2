package e2e

import (
	"errors"
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
	deadline := time.Now().Add(10 * time.Second)
	for tn.n.StoredEnvelopes() > stored {
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
