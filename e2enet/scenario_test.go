package e2enet

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
)

const testPassphrase = "correct horse battery staple"

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// user is an account whose client talks to one node.
type user struct {
	*client.Client
	home string
}

func newUser(t *testing.T, handle string, nodeIdx int) *user {
	t.Helper()
	home := t.TempDir()
	c, err := client.Create(ctxT(t), conf(home, nodeIdx), handle)
	if err != nil {
		t.Fatalf("create %s on node%d: %v", handle, nodeIdx, err)
	}
	t.Cleanup(func() { c.Close() })
	return &user{Client: c, home: home}
}

func conf(home string, nodeIdx int) client.Config {
	return client.Config{Home: home, NodeURL: net4.url(nodeIdx), Passphrase: []byte(testPassphrase), KeystoreWorkFactor: 10}
}

// reopen points u's client at another node.
func (u *user) reopen(t *testing.T, nodeIdx int) {
	t.Helper()
	u.Close()
	c, err := client.Open(ctxT(t), conf(u.home, nodeIdx))
	if err != nil {
		t.Fatal(err)
	}
	u.Client = c
}

func send(t *testing.T, from *user, to *user, prefix string, n int) []string {
	t.Helper()
	var sent []string
	for i := range n {
		text := fmt.Sprintf("%s %02d", prefix, i)
		if _, err := from.Send(ctxT(t), to.Handle(), text); err != nil {
			t.Fatalf("%s → %s %q: %v", from.Handle(), to.Handle(), text, err)
		}
		sent = append(sent, text)
	}
	return sent
}

// receivedFrom returns, in order, the texts u holds from sender.
func receivedFrom(t *testing.T, u *user, sender string) []string {
	t.Helper()
	if _, err := u.Sync(ctxT(t)); err != nil {
		t.Fatalf("%s sync: %v", u.Handle(), err)
	}
	hist, err := u.History(func(m *client.Message) bool { return !m.Outgoing && m.From == sender })
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range hist {
		if m.State != client.StateReceived {
			t.Fatalf("%s: message %s in state %s", u.Handle(), m.ID, m.State)
		}
		out = append(out, m.Text)
	}
	return out
}

func expectExactly(t *testing.T, who string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s got %d messages %q, want exactly %d in order %q", who, len(got), got, len(want), want)
	}
}

// Clients on different nodes chat while a node is killed and restarted;
// every acknowledged message is delivered exactly once, in order; a
// recipient whose home node is down gets its mail through another node.
func TestChatAcrossNodesWithNodeLoss(t *testing.T) {
	alice := newUser(t, "alice", 0)
	bob := newUser(t, "bob", 2)
	carol := newUser(t, "carol", 1)
	dave := newUser(t, "dave", 3)

	var toBob, toDave, toAlice []string
	toBob = append(toBob, send(t, alice, bob, "a→b before", 10)...)
	toDave = append(toDave, send(t, carol, dave, "c→d before", 10)...)
	toAlice = append(toAlice, send(t, bob, alice, "b→a before", 5)...)

	net4.stop(t, 1) // carol's node
	toBob = append(toBob, send(t, alice, bob, "a→b node1 down", 10)...)
	toAlice = append(toAlice, send(t, bob, alice, "b→a node1 down", 5)...)
	net4.start(t, 1)
	carol.reopen(t, 1)
	toDave = append(toDave, send(t, carol, dave, "c→d after restart", 10)...)

	expectExactly(t, "bob", receivedFrom(t, bob, alice.Handle()), toBob)
	expectExactly(t, "dave", receivedFrom(t, dave, carol.Handle()), toDave)
	expectExactly(t, "alice", receivedFrom(t, alice, bob.Handle()), toAlice)

	// Bob's home node goes down; alice's messages still reach him through
	// another node, which becomes one of his home nodes.
	net4.stop(t, 2)
	late := send(t, alice, bob, "a→b bob's node down", 5)
	bob.reopen(t, 3)
	expectExactly(t, "bob via node3", receivedFrom(t, bob, alice.Handle()), append(slices.Clone(toBob), late...))
	net4.start(t, 2)
}
