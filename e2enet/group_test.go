package e2enet

import (
	"fmt"
	"testing"

	"github.com/tokenim/tokenim/client"
)

// A group post sent to one node reaches members whose mailboxes live on
// the others: the entry node forwards each replica set its copies with the
// ciphertext once (ReplicateRequest.shared), and every member decrypts it
// from its own node.
func TestGroupPostAcrossNodes(t *testing.T) {
	ctx := ctxT(t)
	alice := newUser(t, "gnalice", 0)
	var members []*user
	var handles []string
	for i := range 6 {
		m := newUser(t, fmt.Sprintf("gnm%d", i), 1+i%3)
		members = append(members, m)
		handles = append(handles, m.Handle())
	}
	if err := alice.CreateGroup(ctx, "crossnodes", handles, ""); err != nil {
		t.Fatal(err)
	}
	want := []string{"first to all nodes", "second to all nodes"}
	for _, text := range want {
		if _, err := alice.SendGroup(ctx, "crossnodes", text); err != nil {
			t.Fatal(err)
		}
	}
	elsewhere := 0
	for i, n := range net4.nodes {
		if i == 0 {
			continue
		}
		for _, h := range handles {
			if ds, err := n.Relay().Read(h, 0, 0); err == nil && len(ds) > 0 {
				elsewhere++
			}
		}
	}
	if elsewhere == 0 {
		t.Fatal("no copy was replicated to another node")
	}
	for _, m := range members {
		if _, err := m.Sync(ctx); err != nil {
			t.Fatalf("%s sync: %v", m.Handle(), err)
		}
		hist, err := m.History(func(x *client.Message) bool { return x.Group == "crossnodes" && !x.Outgoing })
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range hist {
			if x.State == client.StateReceived {
				got = append(got, x.Text)
			}
		}
		expectExactly(t, m.Handle(), got, want)
	}
}
