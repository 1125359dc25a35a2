package msgproof

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	"github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/msglog"
	"google.golang.org/protobuf/proto"
)

const chain = "tokenim-proof-test"

// fixture is a real chain of two blocks under four validators: block H
// holds a node's anchor of a log of 20 leaves, block H+1 carries H's
// results, signed by the validators in signers (indexes into the set).
type fixture struct {
	in    BuildInput
	leaf  []byte
	envID []byte
}

func build(t testing.TB, signers []int, code uint32) (*tokenimv1.LogProof, *fixture) {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := msglog.New(db, 'L')
	if err != nil {
		t.Fatal(err)
	}
	var ids, leaves [][]byte
	for i := range 20 {
		id := make([]byte, 16)
		rand.Read(id)
		ids, leaves = append(ids, id), append(leaves, msglog.LeafData(id, []byte(fmt.Sprintf("ct %d", i)), nil))
	}
	if _, err := l.Append(ids, leaves); err != nil {
		t.Fatal(err)
	}
	root, _ := l.Root(20)
	incl, _ := l.Inclusion(7, 20)

	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	anchor, err := ledger.SignTx(&tokenimv1.TxBody{ChainId: chain, Signer: ledger.NodeSigner(ledger.NodeID(pub)),
		Msg: &tokenimv1.TxBody_AnchorLog{AnchorLog: &tokenimv1.AnchorLog{TreeSize: 20, RootHash: root, NodeKey: pub}}}, key)
	if err != nil {
		t.Fatal(err)
	}

	var pvs []types.PrivValidator
	var list []*types.Validator
	for range 4 {
		pv := types.NewMockPV()
		pk, _ := pv.GetPubKey()
		pvs = append(pvs, pv)
		list = append(list, types.NewValidator(pk, 10))
	}
	vals := types.NewValidatorSet(list)
	ordered := make([]types.PrivValidator, len(vals.Validators))
	for _, pv := range pvs {
		pk, _ := pv.GetPubKey()
		idx, _ := vals.GetByAddress(pk.Address())
		ordered[idx] = pv
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const h = 41
	block := types.MakeBlock(h, types.Txs{types.Tx("other transaction"), anchor}, &types.Commit{}, nil)
	block.ChainID, block.Time = chain, now
	block.Version = cmtversion.Consensus{Block: version.BlockProtocol}
	block.ValidatorsHash, block.NextValidatorsHash = vals.Hash(), vals.Hash()
	block.ProposerAddress = vals.Validators[0].Address
	block.AppHash = bytes.Repeat([]byte{0xa5}, 32)
	results := []*abci.ExecTxResult{{Code: 0}, {Code: code, Log: "not deterministic", GasUsed: 1}}
	part := types.PartSetHeader{Total: 1, Hash: make([]byte, 32)}
	next := &types.Header{Version: block.Version, ChainID: chain, Height: h + 1, Time: now.Add(time.Second),
		LastBlockID: types.BlockID{Hash: block.Hash(), PartSetHeader: part}, LastResultsHash: types.NewResults(results).Hash(),
		ValidatorsHash: vals.Hash(), NextValidatorsHash: vals.Hash(), ProposerAddress: vals.Validators[0].Address}
	blockID := types.BlockID{Hash: next.Hash(), PartSetHeader: part}
	voteSet := types.NewVoteSet(chain, h+1, 0, cmtproto.PrecommitType, vals)
	ext, err := makeCommit(blockID, h+1, voteSet, vals, ordered, now)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[int]bool{}
	for _, i := range signers {
		keep[i] = true
	}
	for i := range ext.Signatures {
		if !keep[i] { // that validator's precommit never arrived
			ext.Signatures[i] = types.NewCommitSigAbsent()
		}
	}
	in := BuildInput{LeafData: leaves[7], LeafIndex: 7, TreeSize: 20, Inclusion: incl, Block: block, TxIndex: 1,
		Results: results, Next: &types.SignedHeader{Header: next, Commit: ext}, NextVals: vals}
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	return p, &fixture{in: in, leaf: leaves[7], envID: ids[7]}
}

// makeCommit signs blockID with the given validators (each at its index
// in vals) and returns the commit.
func makeCommit(blockID types.BlockID, h int64, voteSet *types.VoteSet, vals *types.ValidatorSet, signers []types.PrivValidator, now time.Time) (*types.Commit, error) {
	for _, pv := range signers {
		pk, _ := pv.GetPubKey()
		idx, _ := vals.GetByAddress(pk.Address())
		vote := &types.Vote{ValidatorAddress: pk.Address(), ValidatorIndex: idx, Height: h, Type: cmtproto.PrecommitType, BlockID: blockID, Timestamp: now}
		v := vote.ToProto()
		if err := pv.SignVote(chain, v); err != nil {
			return nil, err
		}
		vote.Signature = v.Signature
		if _, err := voteSet.AddVote(vote); err != nil {
			return nil, err
		}
	}
	return voteSet.MakeExtendedCommit(types.ABCIParams{}).ToCommit(), nil
}

func TestVerify(t *testing.T) {
	p, f := build(t, []int{0, 1, 2, 3}, 0)
	r, err := Verify(p, chain)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.EnvelopeID) != string(f.envID) || r.LeafIndex != 7 || r.TreeSize != 20 || r.Height != 41 ||
		r.SignedPower != 40 || r.TotalPower != 40 || !r.Time.Equal(f.in.Block.Time) || !r.Committed.Equal(f.in.Next.Time) ||
		len(r.AppHash) == 0 || string(r.AppHash) != string(f.in.Block.AppHash) {
		t.Fatalf("result: %+v", r)
	}
	three, _ := build(t, []int{0, 1, 3}, 0)
	if r, err := Verify(three, chain); err != nil || r.SignedPower != 30 {
		t.Fatalf("3 of 4 validators: %+v %v", r, err)
	}
	bad := func(what string, p *tokenimv1.LogProof, chainID string) {
		t.Helper()
		if _, err := Verify(p, chainID); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: %v", what, err)
		}
	}
	two, _ := build(t, []int{0, 2}, 0)
	bad("signed by 2 of 4", two, chain)
	refused, _ := build(t, []int{0, 1, 2, 3}, 5)
	bad("anchor refused by the chain (code 5)", refused, chain)
	bad("another chain", p, "another-chain")
	moved := proto.Clone(p).(*tokenimv1.LogProof)
	moved.LeafIndex = 8
	bad("another leaf index", moved, chain)
	short := proto.Clone(p).(*tokenimv1.LogProof)
	short.TreeSize = 19
	bad("another tree size", short, chain)
}

// Every byte of a proof matters.
func TestEveryByte(t *testing.T) {
	p, _ := build(t, []int{0, 1, 2, 3}, 0)
	raw, err := codec.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		mut := append([]byte(nil), raw...)
		mut[i] ^= 0x01
		var q tokenimv1.LogProof
		if codec.Unmarshal(mut, &q, 1<<20) != nil {
			continue
		}
		if _, err := Verify(&q, chain); err == nil {
			t.Fatalf("byte %d flipped verifies", i)
		}
	}
}

func FuzzVerify(f *testing.F) {
	p, _ := build(f, []int{0, 1, 2, 3}, 0)
	raw, _ := codec.Marshal(p)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		var q tokenimv1.LogProof
		if codec.Unmarshal(b, &q, 1<<20) != nil {
			return
		}
		Verify(&q, chain) // must not panic
	})
}

// BenchmarkVerify: a proof under four validators.
//
//	go test ./internal/msgproof -run '^$' -bench Verify
func BenchmarkVerify(b *testing.B) {
	p, _ := build(b, []int{0, 1, 2, 3}, 0)
	raw, _ := codec.Marshal(p)
	for b.Loop() {
		if _, err := Verify(p, chain); err != nil {
			b.Fatal(err)
		}
	}
	sigs := 0
	var shp cmtproto.SignedHeader
	if err := shp.Unmarshal(p.Next); err == nil && shp.Commit != nil {
		sigs = shp.Commit.Size()
	}
	vals := 0
	for _, v := range p.NextValidators {
		vals += len(v)
	}
	b.ReportMetric(float64(len(raw)), "proof-bytes")
	b.ReportMetric(float64(len(raw)-sigs-vals), "bytes-without-commit")
}
