package e2enet

import (
	"errors"
	"slices"
	"testing"

	"github.com/tokenim/tokenim/client"
)

// A message written while the sender's node is down is sealed and kept in
// the outbox, as are those written after it; they go out, in order, when
// the node is back, and the recipient gets each once.
func TestOutboxWhileTheNodeIsDown(t *testing.T) {
	alice := newUser(t, "outa", 3)
	bob := newUser(t, "outb", 0)
	sent := send(t, alice, bob, "before", 1)

	net4.stop(t, 3)
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			net4.start(t, 3)
		}
	})
	var queued []string
	for _, text := range []string{"queued 1", "queued 2"} {
		m, err := alice.Send(ctxT(t), bob.Handle(), text)
		if !errors.Is(err, client.ErrQueued) || !errors.Is(err, client.ErrNodeUnreachable) || m == nil || m.State != client.StateQueued {
			t.Fatalf("send %q with the node down: %+v, %v", text, m, err)
		}
		queued = append(queued, m.ID)
	}
	if n, err := alice.Queued(); err != nil || n != 2 {
		t.Fatalf("outbox: %d %v", n, err)
	}
	if _, err := alice.Sync(ctxT(t)); !errors.Is(err, client.ErrNodeUnreachable) {
		t.Fatalf("sync with the node down: %v", err)
	}
	expectExactly(t, "bob, alice's node down", receivedFrom(t, bob, alice.Handle()), sent)

	net4.start(t, 3)
	restarted = true
	if _, err := alice.Sync(ctxT(t)); err != nil {
		t.Fatalf("sync with the node back: %v", err)
	}
	if n, err := alice.Queued(); err != nil || n != 0 {
		t.Fatalf("outbox after the node came back: %d %v", n, err)
	}
	hist, err := alice.History(func(m *client.Message) bool { return slices.Contains(queued, m.ID) })
	if err != nil || len(hist) != 2 || hist[0].State != client.StateStored || hist[1].State != client.StateStored {
		t.Fatalf("the queued messages in alice's history: %+v %v", hist, err)
	}
	after := send(t, alice, bob, "after", 1)
	want := append(append(slices.Clone(sent), "queued 1", "queued 2"), after...)
	expectExactly(t, "bob", receivedFrom(t, bob, alice.Handle()), want)
}
