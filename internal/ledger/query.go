package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"google.golang.org/protobuf/proto"
)

// Query answers from the committed state:
//
//	/account/<handle>   Account (canonical protobuf)
//	/history/<handle>   JSON list of KeyEvents
//	/params             Params
//	/node/<node_id>     NodeRecord
//	/nodes              ListNodesResponse (node.proto): every NodeRecord by
//	                    node id, and the height read
//	/validators         ValidatorSet
//	/proposal/<id>      open ValidatorProposal (id in decimal)
//	/anchor/<node_id>   the node's latest LogAnchor (empty if none)
//	/p2p/filter/…       CometBFT's peer filters: every peer is let in
//	                    until RefusePeers (a stopping node)
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	if strings.HasPrefix(req.Path, "/p2p/filter/") {
		if a.refusePeers.Load() {
			return &abci.ResponseQuery{Code: CodeInternal, Log: "the node is stopping"}, nil
		}
		return &abci.ResponseQuery{}, nil
	}
	r, h := a.Committed()
	val, err := query(r, h, req.Path)
	if err != nil {
		return &abci.ResponseQuery{Code: Code(err), Log: errLog(err), Height: h}, nil
	}
	return &abci.ResponseQuery{Key: []byte(req.Path), Value: val, Height: h}, nil
}

func query(r Reader, height int64, path string) ([]byte, error) {
	if len(path) > MaxQueryPath {
		return nil, fmt.Errorf("%w: query path too long", ErrDecode)
	}
	if arg, ok := strings.CutPrefix(path, "/account/"); ok {
		return queryAccount(r, arg)
	}
	if arg, ok := strings.CutPrefix(path, "/history/"); ok {
		return queryHistory(r, arg)
	}
	if arg, ok := strings.CutPrefix(path, "/node/"); ok {
		return marshalOrErr(GetNode(r, arg))
	}
	if arg, ok := strings.CutPrefix(path, "/anchor/"); ok {
		a, err := GetAnchor(r, arg)
		if err != nil || a == nil {
			return nil, err
		}
		return codec.Marshal(a)
	}
	if arg, ok := strings.CutPrefix(path, "/proposal/"); ok {
		id, err := strconv.ParseUint(arg, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: proposal id %q", ErrDecode, arg)
		}
		return marshalOrErr(GetProposal(r, id))
	}
	switch path {
	case "/params":
		return marshalOrErr(GetParams(r))
	case "/validators":
		return marshalOrErr(GetValidators(r))
	case "/nodes":
		nodes, err := ListNodes(r)
		if err != nil {
			return nil, err
		}
		return codec.Marshal(&tokenimv1.ListNodesResponse{Nodes: nodes, Height: height})
	}
	return nil, fmt.Errorf("%w: unknown query path %q", ErrDecode, path)
}

func marshalOrErr[M proto.Message](m M, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return codec.Marshal(m)
}

func queryAccount(r Reader, arg string) ([]byte, error) {
	h, err := NormalizeHandle(arg)
	if err != nil {
		return nil, err
	}
	return marshalOrErr(GetAccount(r, h))
}

func queryHistory(r Reader, arg string) ([]byte, error) {
	h, err := NormalizeHandle(arg)
	if err != nil {
		return nil, err
	}
	hist, err := GetKeyHistory(r, h)
	if err != nil {
		return nil, err
	}
	return json.Marshal(hist)
}
