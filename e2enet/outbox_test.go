package e2enet

import (
	"errors"
	"slices"
	"testing"

	"github.com/tokenim/tokenim/client"
)

// A message written while the sender's node is down is kept in the outbox,
// as are those written after it; they go out, in order, when the node is
// back, and the recipient gets each once. A message that cannot be sealed
// without the network — the first to a new contact (it needs her prekey
// bundle), a group post (it needs the proven member list) — is kept
// unsealed and sealed when it goes; a name the client has never seen as a
// group is refused at once rather than queued.
func TestOutboxWhileTheNodeIsDown(t *testing.T) {
	ctx := ctxT(t)
	alice := newUser(t, "outa", 3)
	bob := newUser(t, "outb", 0)
	carol := newUser(t, "outc", 1) // no session with alice yet
	sent := send(t, alice, bob, "before", 1)
	if err := alice.CreateGroup(ctx, "outboxteam", []string{bob.Handle()}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendGroup(ctx, "outboxteam", "team before"); err != nil {
		t.Fatal(err)
	}

	net4.stop(t, 3)
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			net4.start(t, 3)
		}
	})
	var queued []string
	expectQueued := func(what string, m *client.Message, err error) {
		t.Helper()
		if !errors.Is(err, client.ErrQueued) || !errors.Is(err, client.ErrNodeUnreachable) || m == nil || m.State != client.StateQueued {
			t.Fatalf("%s with the node down: %+v, %v", what, m, err)
		}
		queued = append(queued, m.ID)
	}
	for _, text := range []string{"queued 1", "queued 2"} {
		m, err := alice.Send(ctxT(t), bob.Handle(), text)
		expectQueued(text, m, err)
	}
	m, err := alice.Send(ctxT(t), carol.Handle(), "first to carol")
	expectQueued("a first message", m, err)
	m, err = alice.SendGroup(ctxT(t), "outboxteam", "team while down")
	expectQueued("a group post", m, err)
	if m, err := alice.SendGroup(ctxT(t), "nosuchteam", "lost?"); !errors.Is(err, client.ErrNodeUnreachable) || errors.Is(err, client.ErrQueued) || m != nil {
		t.Fatalf("a post to a group never seen, the node down: %+v, %v (want an error, not queued)", m, err)
	}
	if n, err := alice.Queued(); err != nil || n != 4 {
		t.Fatalf("outbox: %d %v", n, err)
	}
	for range 2 { // each tries to seal what waits, in vain
		if _, err := alice.Sync(ctxT(t)); !errors.Is(err, client.ErrNodeUnreachable) {
			t.Fatalf("sync with the node down: %v", err)
		}
	}
	expectExactly(t, "bob, alice's node down", receivedFrom(t, bob, alice.Handle()), append(slices.Clone(sent), "team before"))
	bobGot := func(group string) []string { // each conversation is in order; between them, arrival decides
		var out []string
		hist, err := bob.History(func(m *client.Message) bool { return !m.Outgoing && m.From == alice.Handle() && m.Group == group })
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range hist {
			out = append(out, m.Text)
		}
		return out
	}

	net4.start(t, 3)
	restarted = true
	if _, err := alice.Sync(ctxT(t)); err != nil {
		t.Fatalf("sync with the node back: %v", err)
	}
	if n, err := alice.Queued(); err != nil || n != 0 {
		t.Fatalf("outbox after the node came back: %d %v", n, err)
	}
	hist, err := alice.History(func(m *client.Message) bool { return slices.Contains(queued, m.ID) })
	if err != nil || len(hist) != len(queued) {
		t.Fatalf("the queued messages in alice's history: %+v %v", hist, err)
	}
	for _, m := range hist {
		if m.State != client.StateStored || m.Evidence == nil {
			t.Fatalf("queued message %q after the node came back: state %s, evidence %v", m.Text, m.State, m.Evidence != nil)
		}
	}
	after := send(t, alice, bob, "after", 1)
	if got := receivedFrom(t, bob, alice.Handle()); len(got) != len(sent)+len(after)+4 {
		t.Fatalf("bob got %q", got)
	}
	expectExactly(t, "bob from alice", bobGot(""), append(append(slices.Clone(sent), "queued 1", "queued 2"), after...))
	expectExactly(t, "bob in the group", bobGot("outboxteam"), []string{"team before", "team while down"})
	expectExactly(t, "carol", receivedFrom(t, carol, alice.Handle()), []string{"first to carol"})
	// The tries to seal while the node was down numbered nothing: no
	// recipient sees a gap.
	for _, u := range []*user{bob, carol} {
		if gaps, err := u.Gaps(); err != nil || len(gaps) != 0 {
			t.Fatalf("%s sees messages missing: %+v %v", u.Handle(), gaps, err)
		}
	}
}
