package e2enet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
)

// While the chain stalls (half the validators' power offline, so no block
// can commit), clients still prove keys, against the newest signed header,
// and read their mail; the chain resumes when the validators are back.
func TestReadWhileTheChainStalls(t *testing.T) {
	alice := newUser(t, "stalla", 0)
	bob := newUser(t, "stallb", 1)
	toBob := send(t, alice, bob, "before the stall", 2)
	expectExactly(t, "bob", receivedFrom(t, bob, alice.Handle()), toBob)

	// Stop node3, then node2 as soon as a block with alice's newest
	// message's anchor commits: the state that block left is then proven by
	// no header (the next block needs node2's vote).
	net4.stop(t, 3)
	stopped := []int{3}
	t.Cleanup(func() {
		for _, i := range stopped {
			net4.start(t, i)
		}
	})
	h := net4.nodes[2].Height()
	toBob = append(toBob, send(t, alice, bob, "as node2 stops", 3)...)
	for deadline := time.Now().Add(10 * time.Second); net4.nodes[2].Height() == h && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	net4.stop(t, 2)
	stopped = append(stopped, 2)
	stalledAt := settledHeight(net4.nodes[0].Height, net4.nodes[1].Height)

	acct, pr, err := bob.ProveAccount(ctxT(t), alice.Handle())
	if err != nil || acct.Handle != alice.Handle() {
		t.Fatalf("proving alice's keys while the chain stalls: %v %v", acct, err)
	}
	if pr.Height < stalledAt-1 || 3*pr.SignedPower <= 2*pr.TotalPower {
		t.Fatalf("proven at block %d (stalled at %d), signed %d of %d", pr.Height, stalledAt, pr.SignedPower, pr.TotalPower)
	}
	t.Logf("stalled at block %d; keys proven against block %d", stalledAt, pr.Height)

	// Bob's sync proves alice's keys to read her messages. (A send may be
	// refused now: half the nodes are down, which may leave fewer than a
	// majority of a mailbox's replicas.)
	expectExactly(t, "bob", receivedFrom(t, bob, alice.Handle()), toBob)
	if _, _, err := alice.ProveAccount(ctxT(t), bob.Handle()); err != nil {
		t.Fatalf("proving bob's keys while the chain stalls: %v", err)
	}
	// An account created now: its registration waits in the mempool (here
	// the client gives up after 5 s); the home keeps the keys.
	daveHome := t.TempDir()
	cctx, cancel := context.WithTimeout(ctxT(t), 5*time.Second)
	_, err = client.Create(cctx, conf(daveHome, 0), "stalld")
	cancel()
	if !errors.Is(err, client.ErrRegistrationPending) {
		t.Fatalf("creating an account while the chain stalls: %v", err)
	}
	if _, err := client.Open(ctxT(t), conf(daveHome, 0)); !errors.Is(err, client.ErrRegistrationPending) {
		t.Fatalf("opening the home while the chain stalls: %v", err)
	}
	if h := max(net4.nodes[0].Height(), net4.nodes[1].Height()); h != stalledAt {
		t.Fatalf("the chain moved from block %d to %d with half its power offline", stalledAt, h)
	}
	// The node's status tells why: dave's registration waits, and it
	// reaches half the validators' power (itself and node1).
	st, err := client.NodeStatus(ctxT(t), conf(t.TempDir(), 0))
	if err != nil || st.Validators != 4 || st.ReachableValidators != 2 || 2*st.ReachablePower != st.ValidatorPower || st.MempoolTxs < 1 || st.CatchingUp {
		t.Fatalf("node0's status while the chain stalls: %+v %v", st, err)
	}

	net4.start(t, 2)
	net4.start(t, 3)
	stopped = nil
	// The chain resumes: a new account commits, and dave's registration
	// with it (opening the home finishes it).
	carol := newUser(t, "stallc", 2)
	back := send(t, carol, alice, "after the stall", 1)
	expectExactly(t, "alice", receivedFrom(t, alice, carol.Handle()), back)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		st, err := client.NodeStatus(ctxT(t), conf(t.TempDir(), 0))
		if err == nil && st.ReachablePower == st.ValidatorPower && st.ReachableValidators == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node0's status after the stall: %+v %v", st, err)
		}
	}
	var dave *client.Client
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if dave, err = client.Open(ctxT(t), conf(daveHome, 0)); err == nil {
			break
		}
		if !errors.Is(err, client.ErrRegistrationPending) || time.Now().After(deadline) {
			t.Fatalf("opening dave's home after the stall: %v", err)
		}
	}
	d := &user{Client: dave, home: daveHome}
	t.Cleanup(func() { d.Close() })
	d.reopen(t, 0) // a plain open now: nothing pending
	toDave := send(t, alice, d, "to dave", 1)
	expectExactly(t, "dave", receivedFrom(t, d, alice.Handle()), toDave)
	d.Close()
	if _, err := client.Create(ctxT(t), conf(daveHome, 0), "stalld"); !errors.Is(err, client.ErrAccountExists) {
		t.Fatalf("creating dave again in his home: %v", err)
	}
}

// settledHeight is the highest of heights once none has changed for a
// second (a block whose votes were cast before a stop may still commit).
func settledHeight(heights ...func() int64) int64 {
	top := func() int64 {
		var h int64
		for _, f := range heights {
			h = max(h, f())
		}
		return h
	}
	h, since := top(), time.Now()
	for time.Since(since) < time.Second {
		time.Sleep(20 * time.Millisecond)
		if now := top(); now != h {
			h, since = now, time.Now()
		}
	}
	return h
}
