package e2enet

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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

// A sender who switches entry nodes meets its rate there too: its posts
// through node 0 were replicated to the nodes keeping the members'
// mailboxes, and they counted them.
func TestGroupRateAcrossEntryNodes(t *testing.T) {
	ctx := ctxT(t)
	alice := newUser(t, "gralice", 0)
	var handles []string
	for i := range 6 {
		handles = append(handles, newUser(t, fmt.Sprintf("grm%d", i), 1+i%3).Handle())
	}
	if _, err := alice.DeployPolicy(ctx, "two-an-hour", "rate = 2\nrate_window = duration(\"1h\")"); err != nil {
		t.Fatal(err)
	}
	if err := alice.CreateGroup(ctx, "ratelimited", handles, "two-an-hour"); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"one", "two"} {
		if _, err := alice.SendGroup(ctx, "ratelimited", text); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the replicas the senders did not wait for (quorum).
	holds := func(i int) bool {
		for _, h := range handles {
			if ds, _ := net4.nodes[i].Relay().Read(h, 0, 0); len(ds) >= 2 {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; i < len(net4.nodes); i++ {
		for !holds(i) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !holds(i) {
			t.Logf("node %d keeps no member's mailbox: not checked", i)
			continue
		}
		alice.reopen(t, i)
		_, err := alice.SendGroup(ctx, "ratelimited", fmt.Sprintf("third, through node %d", i))
		if !errors.Is(err, client.ErrDenied) || !strings.Contains(err.Error(), "rule rate") {
			t.Fatalf("a third post through node %d: %v", i, err)
		}
	}
}
