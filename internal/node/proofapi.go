package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"
	"github.com/cosmos/gogoproto/proto"
	ics23 "github.com/cosmos/ics23/go"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/msglog"
	"github.com/tokenim/tokenim/internal/msgproof"
	"github.com/tokenim/tokenim/internal/relay"
)

// errNotYet: what was asked for is not provable yet (the block that
// commits to it has no successor yet); retry shortly.
var errNotYet = errors.New("not provable yet: wait for the next block")

// lightBlock returns the signed header of height h (0: the latest) and the
// validator set that signed it.
func (n *Node) lightBlock(h int64) (*tokenimv1.GetLightBlockResponse, error) {
	bs := n.rpcEnv.BlockStore
	if h == 0 {
		h = bs.Height()
	}
	if h <= 0 || h > bs.Height() {
		return nil, fmt.Errorf("%w: height %d (latest %d)", errNotYet, h, bs.Height())
	}
	meta := bs.LoadBlockMeta(h)
	if meta == nil {
		return nil, fmt.Errorf("block %d is not stored here (pruned?)", h)
	}
	commit := bs.LoadBlockCommit(h) // in block h+1
	if commit == nil {
		commit = bs.LoadSeenCommit(h) // the latest block: the precommits this node saw
	}
	if commit == nil {
		return nil, fmt.Errorf("%w: no commit for block %d", errNotYet, h)
	}
	vals, err := n.rpcEnv.StateStore.LoadValidators(h)
	if err != nil {
		return nil, fmt.Errorf("validators of block %d: %w", h, err)
	}
	sh := cmtproto.SignedHeader{Header: meta.Header.ToProto(), Commit: commit.ToProto()}
	shb, err := proto.Marshal(&sh)
	if err != nil {
		return nil, err
	}
	return &tokenimv1.GetLightBlockResponse{SignedHeader: shb, Validators: msgproof.EncodeValidators(vals)}, nil
}

func (s *nodeService) GetLightBlock(_ context.Context, req *connect.Request[tokenimv1.GetLightBlockRequest]) (*connect.Response[tokenimv1.GetLightBlockResponse], error) {
	lb, err := s.n.lightBlock(req.Msg.Height)
	if errors.Is(err, errNotYet) {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeNotFound, err)
	}
	return connect.NewResponse(lb), nil
}

// stateProofWait bounds how long GetStateProof waits for the block whose
// header carries the latest state's root (normally well under a second);
// after it, it proves the state the latest header carries.
const stateProofWait = 5 * time.Second

// latestAtWait bounds how long a proof at the latest height waits for the
// next block.
const latestAtWait = 2 * time.Second

func (s *nodeService) GetStateProof(ctx context.Context, req *connect.Request[tokenimv1.GetStateProofRequest]) (*connect.Response[tokenimv1.GetStateProofResponse], error) {
	key, err := stateProofKey(req.Msg.What)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	if h := req.Msg.Height; h != 0 {
		return s.stateProofAt(ctx, key, h)
	}
	deadline := time.Now().Add(stateProofWait)
	for {
		value, p, root, version, err := s.n.app.ProveKey(key)
		if err != nil {
			return nil, connect.NewError(connect.CodeUnavailable, err)
		}
		// The root is the app hash of block version+1, or of block version if
		// that block changed nothing.
		for _, h := range []int64{version + 1, version} {
			meta := s.n.rpcEnv.BlockStore.LoadBlockMeta(h)
			if meta == nil || !bytes.Equal(meta.Header.AppHash, root) {
				continue
			}
			lb, err := s.n.lightBlock(h)
			if err != nil {
				break
			}
			return stateProofResponse(value, p, lb)
		}
		// Block version+1 is late: the chain has stalled (too few
		// validators online). The newest provable state is then the one
		// block version's own header carries, the state block version-1
		// left. When this node committed its last block tells a stall that
		// began before this call, so clients do not wait on every proof
		// while it lasts.
		now := time.Now()
		if now.After(deadline) || now.Sub(time.Unix(0, s.n.committedAt.Load())) > stateProofWait {
			if version > 1 && s.n.rpcEnv.BlockStore.LoadBlockMeta(version) != nil {
				return s.stateProofAt(ctx, key, version-1)
			}
			return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("%w: no signed header carries state version %d yet", errNotYet, version))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stateProofKey maps GetStateProof's what to a state key.
func stateProofKey(what string) ([]byte, error) {
	kind, name, _ := strings.Cut(what, "/")
	switch kind {
	case "account":
		if h, err := ledger.NormalizeHandle(name); err != nil || h != name {
			return nil, fmt.Errorf("%w: %q", ledger.ErrInvalidHandle, name)
		}
		return ledger.AccountStateKey(name), nil
	case "group":
		if err := ledger.CheckGroupName(name); err != nil {
			return nil, err
		}
		return ledger.GroupStateKey(name), nil
	case "groups":
		if h, err := ledger.NormalizeHandle(name); err != nil || h != name {
			return nil, fmt.Errorf("%w: %q", ledger.ErrInvalidHandle, name)
		}
		return ledger.AccountGroupsStateKey(name), nil
	}
	return nil, fmt.Errorf("cannot prove %q: ask for account/<handle>, group/<name> or groups/<handle>", what)
}

// stateProofAt proves key in the state block h left, against the header of
// block h+1 (whose app hash is that state's root).
func (s *nodeService) stateProofAt(ctx context.Context, key []byte, h int64) (*connect.Response[tokenimv1.GetStateProofResponse], error) {
	if h < 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("height %d", h))
	}
	value, p, root, _, err := s.n.app.ProveKeyAt(key, h)
	if errors.Is(err, ledger.ErrNoVersion) {
		return nil, connect.NewError(connect.CodeOutOfRange, fmt.Errorf("block %d is not committed yet: %v", h, err))
	}
	if errors.Is(err, ledger.ErrVersionGone) {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("this node does not keep the state of block %d; ask a node that does: %v", h, err))
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	// Block h+1 carries the root. If h is the latest block, wait a little
	// for the next one (the chain makes blocks only for transactions).
	meta := s.n.rpcEnv.BlockStore.LoadBlockMeta(h + 1)
	for deadline := time.Now().Add(latestAtWait); meta == nil && time.Now().Before(deadline); meta = s.n.rpcEnv.BlockStore.LoadBlockMeta(h + 1) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if meta == nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("block %d is the latest: the state it left is proven by the next block's header, which does not exist yet (ask without a height for the latest state)", h))
	}
	if !bytes.Equal(meta.Header.AppHash, root) {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("state %d does not hash to block %d's app hash", h, h+1))
	}
	lb, err := s.n.lightBlock(h + 1)
	if errors.Is(err, errNotYet) {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeNotFound, err)
	}
	return stateProofResponse(value, p, lb)
}

func stateProofResponse(value []byte, p *ics23.CommitmentProof, lb *tokenimv1.GetLightBlockResponse) (*connect.Response[tokenimv1.GetStateProofResponse], error) {
	pb, err := p.Marshal()
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(&tokenimv1.GetStateProofResponse{Value: value, Proof: pb, LightBlock: lb}), nil
}

func (s *nodeService) GetMessageProof(_ context.Context, req *connect.Request[tokenimv1.GetMessageProofRequest]) (*connect.Response[tokenimv1.GetMessageProofResponse], error) {
	if len(req.Msg.EnvelopeId) != relay.IDSize {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("envelope id of %d bytes, want %d", len(req.Msg.EnvelopeId), relay.IDSize))
	}
	res, err := s.n.messageProof(req.Msg.EnvelopeId)
	switch {
	case errors.Is(err, errUnknownEnvelope):
		return nil, connect.NewError(connect.CodeNotFound, err)
	case err != nil:
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(res), nil
}

var errUnknownEnvelope = errors.New("this node's log has no such envelope")

// messageProof answers GetMessageProof: "stored" until the node's anchor
// covers the leaf and the block after the anchor's exists, then the proof.
func (n *Node) messageProof(id []byte) (*tokenimv1.GetMessageProofResponse, error) {
	r, _ := n.app.Committed()
	latest, err := ledger.GetAnchor(r, n.nodeID)
	if err != nil {
		return nil, err
	}
	bs := n.rpcEnv.BlockStore
	var in msgproof.BuildInput
	var size uint64
	var h int64
	res := &tokenimv1.GetMessageProofResponse{State: "stored"}
	err = n.relay.WithLog(func(l *msglog.Log) error {
		idx, leaf, ok, err := l.LeafOf(id)
		if err != nil {
			return err
		}
		if !ok {
			return errUnknownEnvelope
		}
		res.LeafIndex = idx
		if latest != nil { // recorded by the anchorer, unless it stopped first
			if err := l.RecordAnchor(latest.TreeSize, latest.Height); err != nil {
				return err
			}
		}
		// The earliest anchor covering the leaf, once the block after it
		// (which signs its result) exists.
		if size, h, ok, err = l.FirstAnchor(idx); err != nil || !ok || bs.Height() < h+1 {
			size = 0
			return err
		}
		in.LeafIndex, in.TreeSize = idx, size
		if in.Inclusion, err = l.Inclusion(idx, size); err != nil {
			return err
		}
		in.LeafData = leaf
		return nil
	})
	if err != nil || in.TreeSize == 0 {
		return res, err
	}
	if in.Block = bs.LoadBlock(h); in.Block == nil {
		return nil, fmt.Errorf("block %d is not stored here", h)
	}
	in.TxIndex = -1
	for i, raw := range in.Block.Txs {
		tx, err := ledger.DecodeTx(raw)
		if err == nil && tx.Body.Signer == ledger.NodeSigner(n.nodeID) && tx.Body.GetAnchorLog().GetTreeSize() == size {
			in.TxIndex = i
			break
		}
	}
	if in.TxIndex < 0 {
		return nil, fmt.Errorf("anchor of %d leaves not found in block %d", size, h)
	}
	fb, err := n.rpcEnv.StateStore.LoadFinalizeBlockResponse(h)
	if err != nil {
		return nil, fmt.Errorf("results of block %d: %w", h, err)
	}
	in.Results = fb.TxResults
	meta := bs.LoadBlockMeta(h + 1)
	commit := bs.LoadBlockCommit(h + 1)
	if commit == nil {
		commit = bs.LoadSeenCommit(h + 1)
	}
	if meta == nil || commit == nil {
		return res, nil
	}
	in.Next = &types.SignedHeader{Header: &meta.Header, Commit: commit}
	if in.NextVals, err = n.rpcEnv.StateStore.LoadValidators(h + 1); err != nil {
		return nil, err
	}
	p, err := msgproof.Build(in)
	if err != nil {
		return nil, err
	}
	if res.Proof, err = codec.Marshal(p); err != nil {
		return nil, err
	}
	res.State = "anchored"
	return res, nil
}
