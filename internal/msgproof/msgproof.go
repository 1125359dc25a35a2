// Package msgproof builds and checks LogProofs: that an envelope was in a
// node's message log (package msglog) and that the log's root was anchored
// on chain in a block the validators signed. Verify needs nothing but the
// proof and the chain id: a third party runs it offline.
//
// Verify checks, in order: the leaf's inclusion in the anchored tree; the
// anchor transaction (strict decoding, this chain, an AnchorLog of that
// tree size, signed by the node key it names, signer node/<id of that
// key>); its inclusion in the block's data hash; its result (code 0) in the
// next header's last-results hash, at the same index; the next header's
// link to the block and its validator set; and the next block's commit,
// every present signature verified, signed by more than 2/3 of the power.
package msgproof

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cryptoenc "github.com/cometbft/cometbft/crypto/encoding"
	"github.com/cometbft/cometbft/crypto/merkle"
	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"
	gogoproto "github.com/cosmos/gogoproto/proto"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/msglog"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ErrInvalid wraps every reason a proof does not verify.
var ErrInvalid = errors.New("proof does not verify")

// Result is what a verified proof shows.
type Result struct {
	EnvelopeID       []byte
	CiphertextSHA256 []byte
	Commitment       []byte // zeros if the envelope had none
	NodeID           string // the node whose log it is
	LeafIndex        uint64
	TreeSize         uint64
	Root             []byte
	Height           int64     // block of the anchor
	Time             time.Time // that block's time (BFT time: when the block before it was committed, which can be long before on a quiet chain)
	Committed        time.Time // the next block's time: when the anchor's block was committed (the median of its precommits' times)
	SignedPower      int64     // power that signed block Height+1
	TotalPower       int64
	ValidatorsHash   []byte // compare with a trusted set
	AppHash          []byte // block Height's app hash: the root of the state block Height-1 left
}

// BuildInput is what a node has to make a proof.
type BuildInput struct {
	LeafData  []byte
	LeafIndex uint64
	TreeSize  uint64
	Inclusion [][]byte
	Block     *types.Block         // height H, holding the anchor
	TxIndex   int                  // the anchor's index in Block
	Results   []*abci.ExecTxResult // block H's results
	Next      *types.SignedHeader  // H+1 and its commit
	NextVals  *types.ValidatorSet  // the set at H+1
}

// Build assembles a LogProof.
func Build(in BuildInput) (*tokenimv1.LogProof, error) {
	if in.TxIndex < 0 || in.TxIndex >= len(in.Block.Txs) || len(in.Results) != len(in.Block.Txs) {
		return nil, fmt.Errorf("msgproof: tx %d of %d (results %d)", in.TxIndex, len(in.Block.Txs), len(in.Results))
	}
	header, err := marshal(in.Block.Header.ToProto())
	if err != nil {
		return nil, err
	}
	tp := in.Block.Txs.Proof(in.TxIndex).ToProto()
	txProof, err := marshal(&tp)
	if err != nil {
		return nil, err
	}
	res := types.NewResults(in.Results)
	result, err := res[in.TxIndex].Marshal()
	if err != nil {
		return nil, err
	}
	rp := res.ProveResult(in.TxIndex)
	resultProof, err := marshal(rp.ToProto())
	if err != nil {
		return nil, err
	}
	next, err := marshal(in.Next.ToProto())
	if err != nil {
		return nil, err
	}
	vals := EncodeValidators(in.NextVals)
	return &tokenimv1.LogProof{
		LeafData: in.LeafData, LeafIndex: in.LeafIndex, TreeSize: in.TreeSize, Inclusion: in.Inclusion,
		AnchorTx: in.Block.Txs[in.TxIndex], Height: in.Block.Height, Header: header, TxProof: txProof,
		Result: result, ResultProof: resultProof, Next: next, NextValidators: vals,
	}, nil
}

func marshal(m gogoproto.Message) ([]byte, error) { return gogoproto.Marshal(m) }

// unmarshal decodes b into m and insists that b is m's canonical encoding:
// nothing in b may go unchecked (an unknown field, say).
func unmarshal(what string, b []byte, m gogoproto.Message) error {
	if err := gogoproto.Unmarshal(b, m); err != nil {
		return bad("%s: %v", what, err)
	}
	if again, err := gogoproto.Marshal(m); err != nil || !bytes.Equal(again, b) {
		return bad("%s is not canonically encoded", what)
	}
	return nil
}

// ValidatorSet rebuilds a validator set from SimpleValidator encodings
// (EncodeValidators), each canonical.
func ValidatorSet(enc [][]byte) (*types.ValidatorSet, error) {
	if len(enc) == 0 || len(enc) > types.MaxVotesCount {
		return nil, bad("validator set of %d", len(enc))
	}
	var list []*types.Validator
	for i, b := range enc {
		var sv cmtproto.SimpleValidator
		if err := unmarshal("validator", b, &sv); err != nil {
			return nil, err
		}
		if sv.PubKey == nil {
			return nil, bad("validator %d has no key", i)
		}
		pk, err := cryptoenc.PubKeyFromProto(*sv.PubKey)
		if err != nil {
			return nil, bad("validator %d: %v", i, err)
		}
		v := types.NewValidator(pk, sv.VotingPower)
		if !bytes.Equal(v.Bytes(), b) {
			return nil, bad("validator %d is not canonically encoded", i)
		}
		list = append(list, v)
	}
	vals := types.NewValidatorSet(list)
	if err := vals.ValidateBasic(); err != nil {
		return nil, bad("validator set: %v", err)
	}
	return vals, nil
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Verify checks p entirely (see the package comment) for chain chainID.
func Verify(p *tokenimv1.LogProof, chainID string) (*Result, error) {
	leaf := p.GetLeafData()
	if len(leaf) != msglog.LeafSize || !bytes.HasPrefix(leaf, []byte(msglog.LeafDomain)) {
		return nil, bad("leaf of %d bytes is not a message log leaf", len(leaf))
	}
	rest := leaf[len(msglog.LeafDomain):]
	r := &Result{EnvelopeID: rest[:16], CiphertextSHA256: rest[16:48], Commitment: rest[48:80], LeafIndex: p.LeafIndex, TreeSize: p.TreeSize}

	// The anchor transaction.
	tx, err := ledger.DecodeTx(p.AnchorTx)
	if err != nil {
		return nil, bad("anchor transaction: %v", err)
	}
	a := tx.Body.GetAnchorLog()
	switch {
	case a == nil:
		return nil, bad("the transaction is not an AnchorLog")
	case tx.Body.ChainId != chainID:
		return nil, bad("anchor for chain %q, not %q", tx.Body.ChainId, chainID)
	case len(a.NodeKey) != ed25519.PublicKeySize:
		return nil, bad("anchor node key of %d bytes", len(a.NodeKey))
	case tx.Body.Signer != ledger.NodeSigner(ledger.NodeID(a.NodeKey)):
		return nil, bad("anchor signer %q is not the node of its key", tx.Body.Signer)
	case a.TreeSize != p.TreeSize:
		return nil, bad("anchor is for %d leaves, the proof for %d", a.TreeSize, p.TreeSize)
	}
	if err := tx.VerifyWith(a.NodeKey); err != nil {
		return nil, bad("anchor signature: %v", err)
	}
	r.NodeID, r.Root = ledger.NodeID(a.NodeKey), a.RootHash

	// The leaf in the anchored tree.
	if p.LeafIndex >= p.TreeSize {
		return nil, bad("leaf %d outside a tree of %d", p.LeafIndex, p.TreeSize)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.LeafIndex, p.TreeSize, rfc6962.DefaultHasher.HashLeaf(leaf), p.Inclusion, a.RootHash); err != nil {
		return nil, bad("leaf not in the anchored tree: %v", err)
	}

	// The anchor in block H.
	var hp cmtproto.Header
	if err := unmarshal("header", p.Header, &hp); err != nil {
		return nil, err
	}
	header, err := types.HeaderFromProto(&hp)
	if err != nil {
		return nil, bad("header: %v", err)
	}
	if header.ChainID != chainID || header.Height != p.Height {
		return nil, bad("header is chain %q height %d, want %q height %d", header.ChainID, header.Height, chainID, p.Height)
	}
	var tpp cmtproto.TxProof
	if err := unmarshal("tx proof", p.TxProof, &tpp); err != nil {
		return nil, err
	}
	txProof, err := types.TxProofFromProto(tpp)
	if err != nil {
		return nil, bad("tx proof: %v", err)
	}
	if !bytes.Equal(txProof.Data, p.AnchorTx) {
		return nil, bad("tx proof is for another transaction")
	}
	if err := txProof.Validate(header.DataHash); err != nil {
		return nil, bad("anchor not in block %d: %v", p.Height, err)
	}

	// Its result, in the next header.
	var res abci.ExecTxResult
	if err := unmarshal("result", p.Result, &res); err != nil {
		return nil, err
	}
	if res.Code != 0 {
		return nil, bad("the chain refused the anchor (code %d)", res.Code)
	}
	var rpp cmtcrypto.Proof
	if err := unmarshal("result proof", p.ResultProof, &rpp); err != nil {
		return nil, err
	}
	resultProof, err := merkle.ProofFromProto(&rpp)
	if err != nil {
		return nil, bad("result proof: %v", err)
	}
	if resultProof.Index != txProof.Proof.Index || resultProof.Total != txProof.Proof.Total {
		return nil, bad("result %d/%d is not the anchor's (%d/%d)", resultProof.Index, resultProof.Total, txProof.Proof.Index, txProof.Proof.Total)
	}
	var shp cmtproto.SignedHeader
	if err := unmarshal("next header", p.Next, &shp); err != nil {
		return nil, err
	}
	next, err := types.SignedHeaderFromProto(&shp)
	if err != nil {
		return nil, bad("next header: %v", err)
	}
	if err := next.ValidateBasic(chainID); err != nil {
		return nil, bad("next header: %v", err)
	}
	if next.Height != p.Height+1 || !bytes.Equal(next.LastBlockID.Hash, header.Hash()) {
		return nil, bad("next header (height %d) does not follow block %d", next.Height, p.Height)
	}
	if err := resultProof.Verify(next.LastResultsHash, p.Result); err != nil {
		return nil, bad("anchor result not in the next header: %v", err)
	}

	// The validators' signatures on the next block.
	vals, err := ValidatorSet(p.NextValidators)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(vals.Hash(), next.ValidatorsHash) {
		return nil, bad("validator set is not the next header's")
	}
	if err := VerifyCommit(chainID, vals, next); err != nil {
		return nil, bad("commit: %v", err)
	}
	r.SignedPower = SignedPower(vals, next.Commit)
	r.Height, r.Time, r.Committed, r.TotalPower, r.ValidatorsHash = p.Height, header.Time, next.Time, vals.TotalVotingPower(), vals.Hash()
	r.AppHash = header.AppHash
	return r, nil
}

// VerifyCommit checks that vals signed sh with more than 2/3 of its power,
// every signature in the commit valid — also those of validators that voted
// nil (CometBFT's light-client check ignores them; a proof must not carry
// bytes nobody checks).
func VerifyCommit(chainID string, vals *types.ValidatorSet, sh *types.SignedHeader) error {
	if err := vals.VerifyCommitLightAllSignatures(chainID, sh.Commit.BlockID, sh.Height, sh.Commit); err != nil {
		return err
	}
	for i, s := range sh.Commit.Signatures {
		if s.BlockIDFlag != types.BlockIDFlagNil {
			continue
		}
		if i >= len(vals.Validators) || !bytes.Equal(vals.Validators[i].Address, s.ValidatorAddress) {
			return fmt.Errorf("nil vote %d is not from the validator at that index", i)
		}
		if err := sh.Commit.GetVote(int32(i)).Verify(chainID, vals.Validators[i].PubKey); err != nil {
			return fmt.Errorf("nil vote %d: %w", i, err)
		}
	}
	return nil
}

// EncodeValidators encodes a set as the SimpleValidator bytes its hash
// commits to.
func EncodeValidators(vals *types.ValidatorSet) [][]byte {
	out := make([][]byte, 0, len(vals.Validators))
	for _, v := range vals.Validators {
		out = append(out, v.Bytes())
	}
	return out
}

// SignedPower is the power of vals whose signatures for the block are in
// commit (call after the commit verified).
func SignedPower(vals *types.ValidatorSet, commit *types.Commit) int64 {
	var p int64
	for _, s := range commit.Signatures {
		if s.BlockIDFlag == types.BlockIDFlagCommit {
			if _, v := vals.GetByAddress(s.ValidatorAddress); v != nil {
				p += v.VotingPower
			}
		}
	}
	return p
}
