package e2enet

import (
	"errors"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
)

// Across nodes: the sender proves a message against its entry node's
// anchored log and the recipient against its own node's (a replica of its
// mailbox), each signed by more than 2/3 of the four validators' power;
// keys are proven against headers the validator set signed.
func TestProofsAcrossNodes(t *testing.T) {
	alice := newUser(t, "pxa", 0)
	carol := newUser(t, "pxc", 1)
	send(t, alice, carol, "prove across", 1)
	receivedFrom(t, carol, alice.Handle())
	hist, err := carol.History(func(m *client.Message) bool { return m.From == alice.Handle() })
	if err != nil || len(hist) != 1 {
		t.Fatalf("carol's history: %v %v", hist, err)
	}
	for _, c := range []struct {
		who *user
		id  string
	}{{carol, hist[0].ID}, {alice, hist[0].ID}} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, a, err := c.who.Verify(ctxT(t), c.id)
			if err == nil {
				if 3*a.SignedPower <= 2*a.TotalPower {
					t.Fatalf("%s: signed %d of %d", c.who.Handle(), a.SignedPower, a.TotalPower)
				}
				break
			}
			if !errors.Is(err, client.ErrNotAnchored) || time.Now().After(deadline) {
				t.Fatalf("%s verifies: %v", c.who.Handle(), err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	acct, pr, err := carol.ProveAccount(ctxT(t), alice.Handle())
	if err != nil || acct.Handle != alice.Handle() || 3*pr.SignedPower <= 2*pr.TotalPower {
		t.Fatalf("proven lookup across nodes: %v %+v %v", acct, pr, err)
	}
}
