package e2enet

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/node"
)

// A fifth node joins (genesis and a peer from a running node), syncs,
// registers, serves a client; the validators vote it in and out.
func TestFifthNodeJoinsServesAndIsVotedIn(t *testing.T) {
	ctx := ctxT(t)
	home := filepath.Join(net4.dir, "node4")
	base := freePortBase()
	addrs := node.Addrs{API: fmt.Sprintf("127.0.0.1:%d", base), P2P: fmt.Sprintf("127.0.0.1:%d", base+1), RPC: fmt.Sprintf("127.0.0.1:%d", base+2)}
	if err := node.InitJoin(ctx, home, node.InitOptions{Addrs: addrs}, net4.url(0)); err != nil {
		t.Fatal(err)
	}
	n4, err := node.Start(ctx, home, node.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// node4 stays in the network (and the registry) for the package's other
	// tests; TestMain stops it.
	net4.nodes = append(net4.nodes, n4)
	net4.tn.Nodes = append(net4.tn.Nodes, node.TestnetNode{Name: "node4", Home: home, APIURL: n4.APIURL()})
	if err := net4.waitRegistered(5); err != nil {
		t.Fatal(err)
	}
	if n4.ChainID() != net4.nodes[0].ChainID() || n4.Height() < 2 {
		t.Fatalf("node4 on chain %s at height %d", n4.ChainID(), n4.Height())
	}

	alice := newUser(t, "alice5", 0)
	erin := newUser(t, "erin5", 4)
	sent := send(t, alice, erin, "to the new node", 5)
	expectExactly(t, "erin on node4", receivedFrom(t, erin, alice.Handle()), sent)
	back := send(t, erin, alice, "from the new node", 3)
	expectExactly(t, "alice", receivedFrom(t, alice, erin.Handle()), back)

	// Vote node4 in as a validator (3 of 4 validators: > 2/3), then out.
	// With power 1 the network does not depend on node4 for liveness while
	// it is a validator (the others hold 40 of 41).
	op4, err := node.NewOperator(home, net4.url(0))
	if err != nil {
		t.Fatal(err)
	}
	vote(t, op4.ValidatorKey, 1)
	waitValidators(t, 5)
	vote(t, op4.ValidatorKey, 0)
	waitValidators(t, 4)
}

// vote has node0 propose a power for key and node1, node2, … approve it
// until it applies; it checks that two approvals of four are not enough.
func vote(t *testing.T, key []byte, power int64) {
	t.Helper()
	ctx := ctxT(t)
	ops := make([]*node.Operator, 4)
	for i := range ops {
		// All through node0, so each transaction sees the previous one.
		op, err := node.NewOperator(net4.tn.Nodes[i].Home, net4.url(0))
		if err != nil {
			t.Fatal(err)
		}
		ops[i] = op
	}
	if _, err := ops[0].Propose(ctx, key, power); err != nil {
		t.Fatalf("propose: %v", err)
	}
	v, err := ops[0].Validators(ctx)
	if err != nil || len(v.Proposals) != 1 {
		t.Fatalf("proposals after propose: %v %v", v, err)
	}
	id := v.Proposals[0].Id
	if _, err := ops[1].Approve(ctx, id); err != nil {
		t.Fatalf("approve 1: %v", err)
	}
	if v, _ := ops[0].Validators(ctx); len(v.Proposals) != 1 {
		t.Fatalf("2 of 4 approvals applied the change: %v", v)
	}
	for _, op := range ops[2:] {
		if _, err := op.Approve(ctx, id); err != nil {
			t.Fatalf("approve: %v", err)
		}
		if v, _ := ops[0].Validators(ctx); len(v.Proposals) == 0 {
			return
		}
	}
	t.Fatal("the change did not apply with every validator's approval")
}

// waitValidators waits until CometBFT's validator set (as node0 reports
// it over its RPC) has n validators.
func waitValidators(t *testing.T, n int) {
	t.Helper()
	api := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, net4.url(0))
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := api.Validators(context.Background(), connect.NewRequest(&tokenimv1.ValidatorsRequest{}))
		if err == nil && len(res.Msg.Set.Validators) == n && len(res.Msg.Proposals) == 0 && net4.nodes[0].CometValidators() == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("validator set did not reach %d (ledger %v, err %v; CometBFT %d)", n, res, err, net4.nodes[0].CometValidators())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
