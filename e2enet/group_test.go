package e2enet

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/relay"
)

// A group post sent to one node reaches members whose home nodes are the
// others: the entry node stores it once in the group's mailbox on its
// replicas (every member's home node among them), with its readers, and
// every member decrypts it from its own node; each home node deletes the
// posts once the members who read from it have acknowledged them.
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
	// Every member's home node keeps the posts (the quorum answered the
	// sender; the rest follow).
	mb := relay.GroupMailbox("crossnodes")
	for i := 1; i <= 3; i++ {
		var ds []*tokenimv1.Delivery
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if ds, _ = net4.nodes[i].Relay().Read(mb, 0, 0); len(ds) == len(want) {
				break
			}
		}
		if len(ds) != len(want) || len(ds[0].Envelope.Readers) != len(handles) {
			t.Fatalf("node %d (a home node) keeps %d posts of the group (readers %v)", i, len(ds), ds)
		}
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
	// Each home node deletes the posts once the members who read from it
	// have them (its sweeper runs every second).
	for i := 1; i <= 3; i++ {
		deadline := time.Now().Add(10 * time.Second)
		for {
			ds, err := net4.nodes[i].Relay().Read(mb, 0, 0)
			if err == nil && len(ds) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d still keeps %d posts its members have read (%v)", i, len(ds), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
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
		ds, _ := net4.nodes[i].Relay().Read(relay.GroupMailbox("ratelimited"), 0, 0)
		return len(ds) >= 2
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; i <= 3; i++ { // the members' home nodes
		for !holds(i) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !holds(i) { // nodes 1-3 are members' home nodes: they keep the group's mailbox
			t.Fatalf("node %d does not keep the group's posts", i)
		}
		alice.reopen(t, i)
		_, err := alice.SendGroup(ctx, "ratelimited", fmt.Sprintf("third, through node %d", i))
		if !errors.Is(err, client.ErrDenied) || !strings.Contains(err.Error(), "rule rate") {
			t.Fatalf("a third post through node %d: %v", i, err)
		}
	}
}
