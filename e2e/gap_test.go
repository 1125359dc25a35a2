package e2e

import (
	"encoding/hex"
	"slices"
	"testing"

	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/relay"
)

// A node that drops a message from the middle of a conversation: the
// recipient's client reports the gap (the sender's numbering is inside the
// encryption), and each received message names its predecessor.
func TestDroppedMessageIsReported(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "gapa")
	bob, _ := newUser(t, "gapb")
	var ids []string
	for _, text := range []string{"one", "two", "three", "four"} {
		m, err := alice.Send(ctx, bob.Handle(), text)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	id2, _ := hex.DecodeString(ids[1])
	if err := tn.n.Relay().Forget(bob.Handle(), [][]byte{id2}); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("bob got %d messages", len(got))
	}
	for _, m := range got {
		if m.Counter == 3 && m.PrevID != ids[1] {
			t.Fatalf("message 3 names %s as its predecessor, want %s", m.PrevID, ids[1])
		}
		if m.Evidence == nil || len(m.Evidence.Commitment) != 32 || len(m.Evidence.Content) == 0 {
			t.Fatalf("message %d has no evidence: %+v", m.Counter, m.Evidence)
		}
	}
	gaps, err := bob.Gaps()
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 || gaps[0].From != alice.Handle() || len(gaps[0].Missing) != 1 || gaps[0].Missing[0] != 2 {
		t.Fatalf("gaps: %+v", gaps)
	}
	if gaps, _ := alice.Gaps(); len(gaps) != 0 {
		t.Fatalf("alice sees gaps: %+v", gaps)
	}
}

// Members who come and go are not told of posts they were never meant to
// read: a member added to a group after its posts, and one removed and
// added again, report no gaps (the sender key they are handed says where
// their reading starts); a post a node drops later is still reported.
func TestGroupGapsAcrossMembership(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "gma")
	bob, _ := newUser(t, "gmb")
	carol, _ := newUser(t, "gmc")
	dave, _ := newUser(t, "gmd")
	group := uniqueHandle("comego")
	if err := alice.CreateGroup(ctx, group, []string{bob.Handle(), carol.Handle()}, ""); err != nil {
		t.Fatal(err)
	}
	post := func(u *client.Client, text string) *client.Message {
		t.Helper()
		m, err := u.SendGroup(ctx, group, text)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	post(alice, "a1")
	post(bob, "b1")
	if _, err := carol.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.GroupRemove(ctx, group, carol.Handle()); err != nil {
		t.Fatal(err)
	}
	post(alice, "a2 while carol is out") // number 2: neither carol's nor dave's
	if err := alice.GroupAdd(ctx, group, dave.Handle(), ""); err != nil {
		t.Fatal(err)
	}
	if err := alice.GroupAdd(ctx, group, carol.Handle(), ""); err != nil {
		t.Fatal(err)
	}
	post(alice, "a3")
	post(bob, "b2")
	want := map[*client.Client][]string{
		carol: {alice.Handle() + ": a1", bob.Handle() + ": b1", alice.Handle() + ": a3", bob.Handle() + ": b2"},
		dave:  {alice.Handle() + ": a3", bob.Handle() + ": b2"},
		bob:   {alice.Handle() + ": a1", alice.Handle() + ": a2 while carol is out", alice.Handle() + ": a3"},
	}
	for u, w := range want {
		got := groupTexts(t, u, group)
		slices.Sort(got)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Fatalf("%s got %q, want %q", u.Handle(), got, w)
		}
		if gaps, err := u.Gaps(); err != nil || len(gaps) != 0 {
			t.Fatalf("%s reports gaps %+v (%v)", u.Handle(), gaps, err)
		}
	}

	// A post the node drops is reported to the member who missed it.
	post(alice, "a4")
	dropped := post(alice, "a5")
	post(alice, "a6")
	id, _ := hex.DecodeString(dropped.ID)
	if err := tn.n.Relay().Forget(relay.GroupMailbox(group), [][]byte{id}); err != nil {
		t.Fatal(err)
	}
	groupTexts(t, dave, group)
	gaps, err := dave.Gaps()
	if err != nil || len(gaps) != 1 || gaps[0].From != alice.Handle() || gaps[0].Group != group || !slices.Equal(gaps[0].Missing, []uint64{dropped.Counter}) {
		t.Fatalf("dave's gaps after a dropped post: %+v (%v), want alice's %d", gaps, err, dropped.Counter)
	}
}
