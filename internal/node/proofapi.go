package node

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cosmos/gogoproto/proto"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
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
	vp, err := vals.ToProto()
	if err != nil {
		return nil, err
	}
	vb, err := proto.Marshal(vp)
	if err != nil {
		return nil, err
	}
	return &tokenimv1.GetLightBlockResponse{SignedHeader: shb, ValidatorSet: vb}, nil
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

func (s *nodeService) GetStateProof(context.Context, *connect.Request[tokenimv1.GetStateProofRequest]) (*connect.Response[tokenimv1.GetStateProofResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("state proofs are not served yet"))
}

func (s *nodeService) GetMessageProof(context.Context, *connect.Request[tokenimv1.GetMessageProofRequest]) (*connect.Response[tokenimv1.GetMessageProofResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("message proofs are not served yet"))
}
