package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
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
	"google.golang.org/protobuf/proto"
)

func stateProof(t *testing.T, handle string) *tokenimv1.GetStateProofResponse {
	t.Helper()
	api := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, tn.url())
	res, err := api.GetStateProof(ctxT(t), connect.NewRequest(&tokenimv1.GetStateProofRequest{What: "account/" + handle}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg
}

// Key lookups are proven against a header the trusted validators signed:
// a forged key, a stale record (the key was rotated since), a header signed
// by other validators, an existing account claimed absent, or any changed
// byte of the answer is rejected.
func TestKeyProofs(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "kpa")
	bob, _ := newUser(t, "kpb")
	acct, pr, err := alice.ProveAccount(ctx, bob.Handle())
	if err != nil {
		t.Fatal(err)
	}
	if acct.Handle != bob.Handle() || pr.SignedPower != pr.TotalPower || pr.Height <= 0 {
		t.Fatalf("proven: %v %+v", acct, pr)
	}
	if _, _, err := alice.ProveAccount(ctx, "nobody_here"); !errors.Is(err, client.ErrUnknownHandle) {
		t.Fatalf("unknown handle: %v", err)
	}
	old := stateProof(t, bob.Handle())
	if err := bob.RotateSignedPrekey(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var fresh *tokenimv1.GetStateProofResponse
	for fresh = stateProof(t, bob.Handle()); string(fresh.Value) == string(old.Value); fresh = stateProof(t, bob.Handle()) {
		if time.Now().After(deadline) {
			t.Fatal("the rotation did not reach the state")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, _, err := alice.CheckAccountProof(ctx, bob.Handle(), fresh); err != nil {
		t.Fatal(err)
	}
	reject := func(what string, res *tokenimv1.GetStateProofResponse) {
		t.Helper()
		if _, _, err := alice.CheckAccountProof(ctx, bob.Handle(), res); err == nil {
			t.Fatalf("%s accepted", what)
		}
	}
	// The old record with its own (older) header: stale.
	reject("a record older than what the client verified", old)
	// The old record and proof under the new header.
	stale := proto.Clone(fresh).(*tokenimv1.GetStateProofResponse)
	stale.Value, stale.Proof = old.Value, old.Proof
	reject("the rotated-out record under a new header", stale)
	// A forged identity key.
	forged := proto.Clone(fresh).(*tokenimv1.GetStateProofResponse)
	forged.Value = append([]byte(nil), fresh.Value...)
	forged.Value[10] ^= 1
	reject("a forged record", forged)
	// Absent, with the proof of another (absent) key.
	absent := stateProof(t, "nobody_here")
	claim := proto.Clone(fresh).(*tokenimv1.GetStateProofResponse)
	claim.Value, claim.Proof = nil, absent.Proof
	reject("an existing account claimed absent", claim)
	// A header signed by validators the client does not trust.
	reject("a header signed by other validators", resignedByStranger(t, fresh))
	// Every byte.
	raw, _ := codec.Marshal(fresh)
	for i := range raw {
		mut := append([]byte(nil), raw...)
		mut[i] ^= 0x01
		var res tokenimv1.GetStateProofResponse
		if codec.Unmarshal(mut, &res, 1<<20) != nil {
			continue
		}
		if _, _, err := alice.CheckAccountProof(ctx, bob.Handle(), &res); err == nil {
			t.Fatalf("an answer with byte %d flipped is accepted", i)
		}
	}
}

// resignedByStranger rewrites res's header to name a one-validator set the
// chain never had, and has that validator sign it.
func resignedByStranger(t *testing.T, res *tokenimv1.GetStateProofResponse) *tokenimv1.GetStateProofResponse {
	t.Helper()
	var shp cmtproto.SignedHeader
	if err := gogoproto.Unmarshal(res.LightBlock.SignedHeader, &shp); err != nil {
		t.Fatal(err)
	}
	sh, err := types.SignedHeaderFromProto(&shp)
	if err != nil {
		t.Fatal(err)
	}
	pv := types.NewMockPV()
	pk, _ := pv.GetPubKey()
	vals := types.NewValidatorSet([]*types.Validator{types.NewValidator(pk, 10)})
	h := *sh.Header
	h.ValidatorsHash, h.NextValidatorsHash = vals.Hash(), vals.Hash()
	h.ProposerAddress = pk.Address()
	blockID := types.BlockID{Hash: h.Hash(), PartSetHeader: sh.Commit.BlockID.PartSetHeader}
	voteSet := types.NewVoteSet(h.ChainID, h.Height, 0, cmtproto.PrecommitType, vals)
	ext, err := types.MakeExtCommit(blockID, h.Height, 0, voteSet, []types.PrivValidator{pv}, time.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	forged := types.SignedHeader{Header: &h, Commit: ext.ToCommit()}
	b, err := gogoproto.Marshal(forged.ToProto())
	if err != nil {
		t.Fatal(err)
	}
	out := proto.Clone(res).(*tokenimv1.GetStateProofResponse)
	out.LightBlock = &tokenimv1.GetLightBlockResponse{SignedHeader: b, Validators: msgproof.EncodeValidators(vals)}
	return out
}

// Proofs asked for at the same time, across blocks, all hold: an answer is
// checked against what the client had verified when it asked, not against
// a newer header another answer brought meanwhile (a sender key handed to
// many members proves their keys several at a time).
func TestConcurrentProofs(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "cpra")
	bob, _ := newUser(t, "cprb")
	start := tn.n.Height()
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tn.n.Height() < start+3 && time.Now().Before(deadline) {
				if _, _, err := alice.ProveAccount(ctx, bob.Handle()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Blocks come with transactions: bob rotates his signed prekey.
	for tn.n.Height() < start+3 && time.Now().Before(deadline) {
		if err := bob.RotateSignedPrekey(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if tn.n.Height() < start+3 {
		t.Fatalf("the chain did not move (height %d, was %d)", tn.n.Height(), start)
	}
}

// A key change accepted while messages go out to that contact: every
// send either uses the old session to its end or builds a new one (the
// client's lock covers the check that finds a session and the ratchet
// step), and the contact decrypts every message.
func TestSendWhileAcceptingAKeyChange(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "skca")
	bob, _ := newUser(t, "skcb")
	const n = 30
	done := make(chan struct{})
	var accepts int
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			if err := alice.AcceptKeyChange(ctx, bob.Handle()); err != nil {
				t.Errorf("accept: %v", err)
				return
			}
			accepts++
		}
	}()
	var want []string
	for i := range n {
		text := fmt.Sprintf("during key changes %02d", i)
		if _, err := alice.Send(ctx, bob.Handle(), text); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		want = append(want, text)
	}
	<-done
	if accepts != n {
		t.Fatalf("%d accepts", accepts)
	}
	var got []string
	for deadline := time.Now().Add(20 * time.Second); len(got) < n && time.Now().Before(deadline); {
		if _, err := bob.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		hist, err := bob.History(func(m *client.Message) bool { return m.From == alice.Handle() })
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, m := range hist {
			if m.State != client.StateReceived {
				t.Fatalf("bob: %q is %s", m.Text, m.State)
			}
			got = append(got, m.Text)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("bob decrypted %d of %d: %q", len(got), n, got)
	}
}
