package e2e

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"
	gogoproto "github.com/cosmos/gogoproto/proto"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/msgproof"
)

func benchUsers(b *testing.B) (*client.Client, *client.Client) {
	ctx := context.Background()
	var cs []*client.Client
	for _, base := range []string{"bva", "bvb"} {
		c, err := client.Create(ctx, cfg(b.TempDir()), uniqueHandle(base))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs[0], cs[1]
}

// BenchmarkAnchorLatency: the time from a message's admission (Send
// returned) until the node serves a proof that it is anchored on chain
// (its log root in a block, and the next block signed), at 20 messages/s.
//
//	go test ./e2e -run '^$' -bench AnchorLatency -benchtime 100x
func BenchmarkAnchorLatency(b *testing.B) {
	ctx := context.Background()
	alice, bob := benchUsers(b)
	api := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, tn.url())
	var lat []time.Duration
	for b.Loop() {
		m, err := alice.Send(ctx, bob.Handle(), "anchor me")
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		id := mustHex(b, m.ID)
		for {
			res, err := api.GetMessageProof(ctx, connect.NewRequest(&tokenimv1.GetMessageProofRequest{EnvelopeId: id}))
			if err != nil {
				b.Fatal(err)
			}
			if res.Msg.State == "anchored" {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
		time.Sleep(50 * time.Millisecond)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Milliseconds()), "p99-ms")
}

// BenchmarkProofVerify: checking one message proof offline
// (msgproof.Verify), and the part of it that is the commit check
// (all signatures of the next block); with the proof's size, and its size
// without the next block's signatures and validator set, and without the
// whole next signed header.
//
//	go test ./e2e -run '^$' -bench ProofVerify
func BenchmarkProofVerify(b *testing.B) {
	ctx := context.Background()
	alice, bob := benchUsers(b)
	m, err := alice.Send(ctx, bob.Handle(), "prove me")
	if err != nil {
		b.Fatal(err)
	}
	api := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, tn.url())
	var raw []byte
	for raw == nil {
		res, err := api.GetMessageProof(ctx, connect.NewRequest(&tokenimv1.GetMessageProofRequest{EnvelopeId: mustHex(b, m.ID)}))
		if err != nil {
			b.Fatal(err)
		}
		if res.Msg.State == "anchored" {
			raw = res.Msg.Proof
		}
		time.Sleep(20 * time.Millisecond)
	}
	var p tokenimv1.LogProof
	if err := codec.Unmarshal(raw, &p, 1<<20); err != nil {
		b.Fatal(err)
	}
	var shp cmtproto.SignedHeader
	gogoproto.Unmarshal(p.Next, &shp)
	commitBytes, _ := gogoproto.Marshal(shp.Commit)
	vals, _ := msgproof.ValidatorSet(p.NextValidators)
	valBytes := 0
	for _, v := range p.NextValidators {
		valBytes += len(v)
	}
	sh, _ := types.SignedHeaderFromProto(&shp)
	chain := tn.n.ChainID()
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if _, err := msgproof.Verify(&p, chain); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(raw)), "proof-bytes")
		b.ReportMetric(float64(len(raw)-len(commitBytes)-valBytes), "bytes-without-sigs")
		b.ReportMetric(float64(len(raw)-len(p.Next)-valBytes), "bytes-without-next-signed-header")
		b.ReportMetric(float64(len(vals.Validators)), "validators")
	})
	b.Run("commit-only", func(b *testing.B) {
		for b.Loop() {
			if err := vals.VerifyCommitLightAllSignatures(chain, sh.Commit.BlockID, sh.Height, sh.Commit); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkExportVerify10k: verify-export of an audit file of 10,000
// messages (each: content against its commitment and envelope, the full
// proof), offline.
//
//	go test ./e2e -run '^$' -bench ExportVerify -benchtime 1x
func BenchmarkExportVerify10k(b *testing.B) {
	ctx := context.Background()
	alice, bob := benchUsers(b)
	const n = 10_000
	for i := range n {
		if _, err := alice.Send(ctx, bob.Handle(), "message for the record"); err != nil {
			b.Fatalf("send %d: %v", i, err)
		}
	}
	if _, err := bob.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	var ex *client.Export
	deadline := time.Now().Add(time.Minute)
	for {
		var skipped []string
		var err error
		if ex, skipped, err = bob.ExportConversation(ctx, alice.Handle(), nil); err != nil {
			b.Fatal(err)
		}
		if len(skipped) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(ex.Messages) != n {
		b.Fatalf("exported %d of %d", len(ex.Messages), n)
	}
	data, err := ex.Encode()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rep, err := client.VerifyExport(data)
		if err != nil || rep.Messages != n || rep.Gaps != 0 {
			b.Fatalf("%+v %v", rep, err)
		}
	}
	b.ReportMetric(float64(len(data))/float64(n), "bytes/msg")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/msg")
}

func mustHex(b *testing.B, s string) []byte {
	out := make([]byte, len(s)/2)
	for i := range out {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c-'a') + 10
			default:
				b.Fatalf("bad hex %q", s)
			}
		}
		out[i] = v
	}
	return out
}
