package e2e

import (
	"encoding/hex"
	"testing"
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
