package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	"github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"
	gogoproto "github.com/cosmos/gogoproto/proto"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/msgproof"
)

const testChain = "trust-test"

// validators is a set of n validators of power 10 with their signers, in
// the set's order.
func validators(t *testing.T, n int) (*types.ValidatorSet, []types.PrivValidator) {
	t.Helper()
	var pvs []types.PrivValidator
	var list []*types.Validator
	for range n {
		pv := types.NewMockPV()
		pk, _ := pv.GetPubKey()
		pvs = append(pvs, pv)
		list = append(list, types.NewValidator(pk, 10))
	}
	vals := types.NewValidatorSet(list)
	ordered := make([]types.PrivValidator, len(pvs))
	for _, pv := range pvs {
		pk, _ := pv.GetPubKey()
		idx, _ := vals.GetByAddress(pk.Address())
		ordered[idx] = pv
	}
	return vals, ordered
}

// lightBlock makes block h's header, signed by every validator of vals.
func lightBlock(t *testing.T, h int64, vals, next *types.ValidatorSet, pvs []types.PrivValidator) *tokenimv1.GetLightBlockResponse {
	t.Helper()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h) * time.Second)
	hdr := &types.Header{Version: cmtversion.Consensus{Block: version.BlockProtocol}, ChainID: testChain, Height: h, Time: now,
		ValidatorsHash: vals.Hash(), NextValidatorsHash: next.Hash(), ProposerAddress: vals.Validators[0].Address, AppHash: make([]byte, 32)}
	blockID := types.BlockID{Hash: hdr.Hash(), PartSetHeader: types.PartSetHeader{Total: 1, Hash: make([]byte, 32)}}
	voteSet := types.NewVoteSet(testChain, h, 0, cmtproto.PrecommitType, vals)
	for i, pv := range pvs {
		pk, _ := pv.GetPubKey()
		vote := &types.Vote{ValidatorAddress: pk.Address(), ValidatorIndex: int32(i), Height: h, Type: cmtproto.PrecommitType, BlockID: blockID, Timestamp: now}
		v := vote.ToProto()
		if err := pv.SignVote(testChain, v); err != nil {
			t.Fatal(err)
		}
		vote.Signature = v.Signature
		if _, err := voteSet.AddVote(vote); err != nil {
			t.Fatal(err)
		}
	}
	sh := types.SignedHeader{Header: hdr, Commit: voteSet.MakeExtendedCommit(types.ABCIParams{}).ToCommit()}
	b, err := gogoproto.Marshal(sh.ToProto())
	if err != nil {
		t.Fatal(err)
	}
	return &tokenimv1.GetLightBlockResponse{SignedHeader: b, Validators: msgproof.EncodeValidators(vals)}
}

// fakeChain serves the light blocks of a chain whose validators were all
// replaced at one height.
type fakeChain struct {
	tokenimv1connect.UnimplementedNodeServiceHandler
	blocks map[int64]*tokenimv1.GetLightBlockResponse
}

func (f *fakeChain) GetLightBlock(_ context.Context, req *connect.Request[tokenimv1.GetLightBlockRequest]) (*connect.Response[tokenimv1.GetLightBlockResponse], error) {
	lb := f.blocks[req.Msg.Height]
	if lb == nil {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no such block"))
	}
	return connect.NewResponse(lb), nil
}

// After the validator set turned over, a header from before the turnover
// (a proof at a past height) is still accepted: the current set cannot
// vouch for it, the genesis set pinned at first use can. Without the
// pinned genesis set (an older trust store), or for a header signed by
// strangers, it is refused.
func TestOldHeaderAfterTurnover(t *testing.T) {
	genesis, genesisPVs := validators(t, 4)
	later, laterPVs := validators(t, 4)
	strangers, strangerPVs := validators(t, 4)
	chain := &fakeChain{blocks: map[int64]*tokenimv1.GetLightBlockResponse{}}
	const turnover, latest = 10, 20
	for h := int64(1); h <= latest; h++ {
		switch {
		case h < turnover-1:
			chain.blocks[h] = lightBlock(t, h, genesis, genesis, genesisPVs)
		case h == turnover-1:
			chain.blocks[h] = lightBlock(t, h, genesis, later, genesisPVs)
		default:
			chain.blocks[h] = lightBlock(t, h, later, later, laterPVs)
		}
	}
	_, handler := tokenimv1connect.NewNodeServiceHandler(chain)
	srv := httptest.NewServer(handler)
	defer srv.Close()
	st := testStore(t)
	c := &Client{node: tokenimv1connect.NewNodeServiceClient(http.DefaultClient, srv.URL), store: st}
	ctx := context.Background()
	trustAt := func(genesisKept bool) {
		tr := &trust{ChainID: testChain, Height: latest, Validators: msgproof.EncodeValidators(later)}
		if genesisKept {
			tr.Genesis = msgproof.EncodeValidators(genesis)
		}
		if err := c.saveTrust(tr); err != nil {
			t.Fatal(err)
		}
	}

	trustAt(true)
	if _, _, err := c.verifyHeader(ctx, chain.blocks[latest-2]); err != nil {
		t.Fatalf("a recent header: %v", err)
	}
	sh, _, err := c.verifyHeader(ctx, chain.blocks[5])
	if err != nil || sh.Height != 5 {
		t.Fatalf("a header from before the turnover: %v", err)
	}
	if tr, _, _ := c.loadTrust(ctx); tr.Height != latest {
		t.Fatalf("an old header moved the trust back to %d", tr.Height)
	}
	forged := lightBlock(t, 5, strangers, strangers, strangerPVs)
	if _, _, err := c.verifyHeader(ctx, forged); !errors.Is(err, ErrUnproven) {
		t.Fatalf("an old header signed by strangers: %v", err)
	}
	trustAt(false)
	if _, _, err := c.verifyHeader(ctx, chain.blocks[5]); !errors.Is(err, ErrUnproven) {
		t.Fatalf("without the genesis set: %v", err)
	}
}
