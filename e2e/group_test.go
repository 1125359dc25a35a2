package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/relay"
	"google.golang.org/protobuf/proto"
)

func groupTexts(t *testing.T, c *client.Client, group string) []string {
	t.Helper()
	if _, err := c.Sync(ctxT(t)); err != nil {
		t.Fatalf("%s sync: %v", c.Handle(), err)
	}
	hist, err := c.History(func(m *client.Message) bool { return !m.Outgoing && m.Group == group })
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range hist {
		if m.State != client.StateReceived {
			t.Fatalf("%s: group message %s is %s", c.Handle(), m.ID, m.State)
		}
		out = append(out, m.From+": "+m.Text)
	}
	return out
}

// Create a group, send (sender keys), remove a member, send again: the
// removed member gets nothing more and may not post; the policy's roles
// hold at the node.
func TestGroupSendRemoveSend(t *testing.T) {
	ctx := ctxT(t)
	alice, bob, carol, group := threeInAGroup(t, "gr")
	if _, err := alice.SendGroup(ctx, group, "hi all"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendGroup(ctx, group, "hi from bob"); err != nil {
		t.Fatal(err)
	}
	want := []string{alice.Handle() + ": hi all", bob.Handle() + ": hi from bob"}
	if got := groupTexts(t, carol, group); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("carol got %q", got)
	}
	if got := groupTexts(t, bob, group); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("bob got %q", got)
	}
	if err := bob.GroupRemove(ctx, group, carol.Handle()); !errors.Is(err, client.ErrDenied) {
		t.Fatalf("a member removing another: %v", err)
	}
	if err := alice.GroupRemove(ctx, group, carol.Handle()); err != nil {
		t.Fatal(err)
	}
	g, _ := alice.Group(ctx, group)
	if g.Epoch != 1 || len(g.Members) != 2 {
		t.Fatalf("after removal: %v", g)
	}
	if gs, err := carol.Groups(ctx); err != nil || len(gs) != 0 {
		t.Fatalf("carol's groups after removal: %v %v", gs, err)
	}
	if gs, err := bob.Groups(ctx); err != nil || len(gs) != 1 || gs[0] != group {
		t.Fatalf("bob's groups: %v %v", gs, err)
	}
	if _, err := alice.SendGroup(ctx, group, "after removal"); err != nil {
		t.Fatal(err)
	}
	// A node that hands carol a copy anyway (it bypasses the policy): she has
	// no sender key of the new epoch, and alice will not give her one.
	leak := groupCopyFor(t, group, bob.Handle(), carol.Handle(), 1)
	if _, err := tn.n.Relay().Append(ctx, []*tokenimv1.Envelope{leak}); err != nil {
		t.Fatal(err)
	}
	carolSync := func() {
		if _, err := carol.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	carolSync()
	if _, err := alice.Sync(ctx); err != nil { // carol's key request: refused
		t.Fatal(err)
	}
	carolSync()
	if h, _ := carol.History(func(m *client.Message) bool { return m.Group == group && m.Text == "after removal" }); len(h) != 0 {
		t.Fatalf("a removed member decrypted a later message: %+v", h)
	}
	if h, _ := carol.History(func(m *client.Message) bool { return m.Group == group && m.State == client.StateWaiting }); len(h) != 1 {
		t.Fatalf("the leaked copy: %+v", h)
	}
	if got := groupTexts(t, bob, group); len(got) != 2 || got[1] != alice.Handle()+": after removal" {
		t.Fatalf("bob after removal got %q", got)
	}
	if got, _ := carol.History(func(m *client.Message) bool { return m.Group == group && m.State == client.StateReceived }); len(got) != 2 {
		t.Fatalf("carol got messages after her removal: %+v", got)
	}
	if _, err := carol.SendGroup(ctx, group, "still here?"); !errors.Is(err, client.ErrNotMember) {
		t.Fatalf("removed member posting: %v", err)
	}
	// A reader may not post: the node refuses by the policy's can_post.
	if err := alice.GroupSetRole(ctx, group, bob.Handle(), "reader"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendGroup(ctx, group, "readers cannot post"); !errors.Is(err, client.ErrDenied) {
		t.Fatalf("reader posting: %v", err)
	}
}

// A group message whose sender key a node dropped waits (not shown as
// undecryptable); the recipient asks the sender for the key again and the
// message is decrypted when it arrives.
func TestGroupKeyLostThenRequested(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "gka")
	bob, _ := newUser(t, "gkb")
	group := uniqueHandle("late")
	if err := alice.CreateGroup(ctx, group, []string{bob.Handle()}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendGroup(ctx, group, "can you read me?"); err != nil {
		t.Fatal(err)
	}
	waiting, err := tn.n.Relay().Read(bob.Handle(), 0, 0)
	if err != nil || len(waiting) != 1 || waiting[0].Envelope.Group != "" {
		t.Fatalf("bob's mailbox: %v %v", waiting, err)
	}
	posts, _, err := tn.n.Relay().ReadGroup(relay.GroupMailbox(group), bob.Handle(), 0, 0)
	if err != nil || len(posts) != 1 {
		t.Fatalf("the group's mailbox, for bob: %v %v", posts, err)
	}
	waiting = append(waiting, posts...)
	if err := tn.n.Relay().Forget(bob.Handle(), [][]byte{waiting[0].Envelope.Id}); err != nil { // the sender key
		t.Fatal(err)
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].State != client.StateWaiting {
		t.Fatalf("bob got %+v", got)
	}
	if _, err := alice.Sync(ctx); err != nil { // the request: alice re-sends the key
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	hist, err := bob.History(func(m *client.Message) bool { return m.Group == group })
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].State != client.StateReceived || hist[0].Text != "can you read me?" || hist[0].ID != hex.EncodeToString(waiting[1].Envelope.Id) {
		t.Fatalf("after the key: %+v", hist)
	}
}

// groupCopyFor takes the newest post of epoch in group's mailbox that from
// may read and returns a copy addressed to to, as a misbehaving node would.
func groupCopyFor(t *testing.T, group, from, to string, epoch uint64) *tokenimv1.Envelope {
	t.Helper()
	ds, _, err := tn.n.Relay().ReadGroup(relay.GroupMailbox(group), from, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(ds) - 1; i >= 0; i-- {
		if e := ds[i].Envelope; e.Group != "" && e.Epoch == epoch {
			c := proto.Clone(e).(*tokenimv1.Envelope)
			c.To, c.Id = to, make([]byte, 16)
			rand.Read(c.Id)
			return c
		}
	}
	t.Fatalf("no group envelope of epoch %d for %s", epoch, from)
	return nil
}

// A member removed while offline reads, when it next syncs, the posts sent
// while it was a member (their sender key reaches it after its removal)
// and nothing sent after.
func TestGroupRemovedWhileOffline(t *testing.T) {
	ctx := ctxT(t)
	alice, bob, carol, group := threeInAGroup(t, "ro")
	if _, err := alice.SendGroup(ctx, group, "before"); err != nil {
		t.Fatal(err)
	}
	if err := alice.GroupRemove(ctx, group, carol.Handle()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendGroup(ctx, group, "after"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := groupTexts(t, carol, group); len(got) != 1 || got[0] != alice.Handle()+": before" {
		t.Fatalf("carol got %q", got)
	}
	if h, _ := carol.History(func(m *client.Message) bool {
		return m.State == client.StateRejected || m.State == client.StateWaiting || m.Text == "after"
	}); len(h) != 0 {
		t.Fatalf("carol: %+v", h)
	}
	if got := groupTexts(t, bob, group); len(got) != 2 {
		t.Fatalf("bob got %q", got)
	}
}

// Joining: under a policy whose can_join lets anyone in, an account adds
// itself and reads what is posted from then on; under the default policy
// the chain refuses it, naming the rule.
func TestGroupJoin(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "joa")
	bob, _ := newUser(t, "job")
	club, closed := groupUnder(t, alice, "can_join = true"), uniqueHandle("closed")
	if err := alice.CreateGroup(ctx, closed, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := bob.GroupJoin(ctx, closed, ""); !errors.Is(err, client.ErrDenied) || !strings.Contains(err.Error(), "can_join") {
		t.Fatalf("joining a group of the default policy: %v", err)
	}
	if err := bob.GroupJoin(ctx, club, "admin"); !errors.Is(err, client.ErrDenied) {
		t.Fatalf("joining as an admin: %v", err)
	}
	if gs, err := bob.Groups(ctx); err != nil || len(gs) != 0 {
		t.Fatalf("bob's groups before joining: %v %v", gs, err)
	}
	if err := bob.GroupJoin(ctx, club, ""); err != nil {
		t.Fatal(err)
	}
	if gs, err := bob.Groups(ctx); err != nil || len(gs) != 1 || gs[0] != club {
		t.Fatalf("bob's groups (proven): %v %v", gs, err)
	}
	if _, err := alice.SendGroup(ctx, club, "welcome"); err != nil {
		t.Fatal(err)
	}
	if got := groupTexts(t, bob, club); len(got) != 1 || got[0] != alice.Handle()+": welcome" {
		t.Fatalf("bob got %q", got)
	}
}

// A group post is stored once and deleted once every reader has it: one
// member's Ack only moves its read position; a member removed before
// reading does not hold the post back.
func TestGroupPostPrunedOnceRead(t *testing.T) {
	ctx := ctxT(t)
	alice, bob, carol, group := threeInAGroup(t, "pr")
	if _, err := alice.SendGroup(ctx, group, "read me"); err != nil {
		t.Fatal(err)
	}
	mb := relay.GroupMailbox(group)
	stored := func() int {
		ds, err := tn.n.Relay().Read(mb, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	if n := stored(); n != 1 {
		t.Fatalf("%d posts stored, want 1 (once, for both readers)", n)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the sweeper prunes every second
	if n := stored(); n != 1 {
		t.Fatal("the post went before carol read it")
	}
	if _, err := carol.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return stored() == 0 }, "the post pruned once both had read it")

	// carol is removed before reading the next post: bob's Ack alone lets it go.
	if _, err := alice.SendGroup(ctx, group, "while carol is a member"); err != nil {
		t.Fatal(err)
	}
	if err := alice.GroupRemove(ctx, group, carol.Handle()); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return stored() == 0 }, "the post pruned once every remaining reader had read it")
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
	}
}
