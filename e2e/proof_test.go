package e2e

import (
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/msgproof"
	"net/http"
)

// waitAnchored verifies message id on c until its log is anchored.
func waitAnchored(t *testing.T, c *client.Client, id string) *client.Anchor {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, a, err := c.Verify(ctxT(t), id)
		if err == nil {
			return a
		}
		if !errors.Is(err, client.ErrNotAnchored) || time.Now().After(deadline) {
			t.Fatalf("verify %s: %v", id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A message is proven, by both ends, in the node's anchored log; the proof
// verifies offline; any changed byte of it, or a proof of another message,
// is rejected.
func TestMessageProof(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "pfa")
	bob, _ := newUser(t, "pfb")
	sent, err := alice.Send(ctx, bob.Handle(), "prove me")
	if err != nil {
		t.Fatal(err)
	}
	other, err := alice.Send(ctx, bob.Handle(), "and me")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	a := waitAnchored(t, alice, sent.ID)
	b := waitAnchored(t, bob, sent.ID)
	if a.Height != b.Height || a.SignedPower != a.TotalPower || a.TotalPower <= 0 || a.Node != tn.n.NodeID() {
		t.Fatalf("anchors: %+v %+v", a, b)
	}
	// The anchor's block was committed after the node admitted the message
	// (the block's own time is the commit of the block before it).
	if received := mustMessage(t, bob, sent.ID).ReceivedAt; a.Committed.Before(received) || a.Committed.Before(a.Time) {
		t.Fatalf("anchor committed %s, block time %s; the node admitted the message at %s", a.Committed, a.Time, received)
	}
	api := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, tn.url())
	ev := mustMessage(t, bob, sent.ID).Evidence
	res, err := api.GetMessageProof(ctx, connect.NewRequest(&tokenimv1.GetMessageProofRequest{EnvelopeId: ev.EnvelopeID}))
	if err != nil || res.Msg.State != "anchored" {
		t.Fatalf("GetMessageProof: %v %v", res, err)
	}
	raw := res.Msg.Proof
	t.Logf("proof: %d bytes", len(raw))
	var p tokenimv1.LogProof
	if err := codec.Unmarshal(raw, &p, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CheckProof(&p, tn.n.ChainID(), ev); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CheckProof(&p, "another-chain", ev); !errors.Is(err, client.ErrProof) {
		t.Fatalf("another chain: %v", err)
	}
	if _, err := client.CheckProof(&p, tn.n.ChainID(), mustMessage(t, bob, other.ID).Evidence); !errors.Is(err, client.ErrProof) {
		t.Fatalf("the proof of one message accepted for another: %v", err)
	}
	for i := range raw {
		for _, flip := range []byte{0x01, 0x80} {
			mut := append([]byte(nil), raw...)
			mut[i] ^= flip
			var q tokenimv1.LogProof
			if codec.Unmarshal(mut, &q, 1<<20) != nil {
				continue
			}
			if _, err := msgproof.Verify(&q, tn.n.ChainID()); err == nil {
				if _, err := client.CheckProof(&q, tn.n.ChainID(), ev); err == nil {
					t.Fatalf("a proof with byte %d flipped (^%#x) verifies", i, flip)
				}
			}
		}
	}
	if _, err := api.GetMessageProof(ctx, connect.NewRequest(&tokenimv1.GetMessageProofRequest{EnvelopeId: make([]byte, 16)})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("unknown envelope: %v", err)
	}
}

func mustMessage(t *testing.T, c *client.Client, id string) *client.Message {
	t.Helper()
	h, err := c.History(func(m *client.Message) bool { return m.ID == id })
	if err != nil || len(h) != 1 {
		t.Fatalf("message %s: %v %v", id, h, err)
	}
	return &h[0]
}
