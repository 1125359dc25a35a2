package e2enet

import (
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/relay"
)

// Messages under a short retention are gone from every node that kept
// them — a group post from the group's mailbox on its replicas, unread
// by most members, and a disappearing 1:1 message from the recipient's
// replicas — and from the clients that had them; a member who syncs
// after the retention gets nothing.
func TestRetentionOnEveryReplica(t *testing.T) {
	ctx := ctxT(t)
	alice := newUser(t, "rtalice", 0)
	bob := newUser(t, "rtbob", 1)
	var handles []string
	var members []*user
	for i := range 3 {
		m := newUser(t, fmt.Sprintf("rtm%d", i), 1+i) // homed on nodes 1, 2, 3
		members = append(members, m)
		handles = append(handles, m.Handle())
	}
	const keep = 4 * time.Second
	pol := fmt.Sprintf("retention = duration(\"%ds\")\n", int(keep/time.Second))
	id, err := alice.EnsurePolicy(ctx, "rt", pol)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.CreateGroup(ctx, "shortlived", handles, id); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetDisappearing(ctx, bob.Handle(), keep); err != nil {
		t.Fatal(err)
	}
	post, err := alice.SendGroup(ctx, "shortlived", "gone from every replica")
	if err != nil {
		t.Fatal(err)
	}
	direct, err := alice.Send(ctx, bob.Handle(), "gone from bob's replicas")
	if err != nil {
		t.Fatal(err)
	}
	if post.ExpiresAt.Sub(post.SentAt) != keep || direct.ExpiresAt.Sub(direct.SentAt) != keep {
		t.Fatalf("expiry: post %v, direct %v after sending", post.ExpiresAt.Sub(post.SentAt), direct.ExpiresAt.Sub(direct.SentAt))
	}

	// holders counts the nodes keeping mailbox's messages with id (the
	// relay's Read does not hide what expired but was not swept yet).
	holders := func(mailbox, id string) (n int) {
		for _, nd := range net4.nodes {
			ds, err := nd.Relay().Read(mailbox, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if hex.EncodeToString(d.Envelope.Id) == id {
					n++
					break
				}
			}
		}
		return n
	}
	gmb := relay.GroupMailbox("shortlived")
	gid := post.ID // a post's envelope id is its message id
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// The post is on the home nodes of its members (1, 2, 3), the
		// 1:1 message on bob's replicas (at least a quorum).
		if holders(gmb, gid) >= 3 && holders(bob.Handle(), direct.ID) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("before expiry: group post on %d nodes, 1:1 message on %d", holders(gmb, gid), holders(bob.Handle(), direct.ID))
		}
	}
	// One member and bob read them while they live.
	has := func(u *user, text string) bool {
		h, err := u.History(func(m *client.Message) bool { return m.Text == text && !m.Outgoing })
		if err != nil {
			t.Fatal(err)
		}
		return len(h) == 1
	}
	if _, err := members[0].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !has(members[0], post.Text) || !has(bob, direct.Text) {
		t.Fatal("the readers did not get the messages while they lived")
	}

	// Past the retention, every node's sweeper (each second) deletes them.
	time.Sleep(time.Until(post.ExpiresAt))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		g, d := holders(gmb, gid), holders(bob.Handle(), direct.ID)
		if g == 0 && d == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after expiry: group post still on %d nodes, 1:1 message on %d", g, d)
		}
	}
	// The clients delete their copies; the members who never synced get
	// nothing.
	for _, u := range []*user{members[0], bob, alice} {
		if _, err := u.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if has(members[0], post.Text) || has(bob, direct.Text) {
		t.Fatal("a reader's client still keeps an expired message")
	}
	if h, _ := alice.History(func(m *client.Message) bool { return m.Outgoing && (m.ID == post.ID || m.ID == direct.ID) }); len(h) != 0 {
		t.Fatalf("the sender's client still keeps %d expired messages", len(h))
	}
	for _, m := range members[1:] {
		got, err := m.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range got {
			if x.Group == "shortlived" && x.State == client.StateReceived {
				t.Fatalf("%s received an expired post: %q", m.Handle(), x.Text)
			}
		}
	}
}
