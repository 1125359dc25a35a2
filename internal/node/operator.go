package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"connectrpc.com/connect"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/ledger"
)

// Validators serves the ledger's validator set and open proposals.
func (s *nodeService) Validators(context.Context, *connect.Request[tokenimv1.ValidatorsRequest]) (*connect.Response[tokenimv1.ValidatorsResponse], error) {
	r, h := s.n.app.Committed()
	set, err := ledger.GetValidators(r)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	resp := &tokenimv1.ValidatorsResponse{Set: set, Height: h}
	for id := uint64(1); id <= set.LastProposalId; id++ {
		if p, err := ledger.GetProposal(r, id); err == nil {
			resp.Proposals = append(resp.Proposals, p)
		}
	}
	return connect.NewResponse(resp), nil
}

// Operator acts as the node of a home (signing with its node key) through
// a node's API: the `tokenim validator` commands use it, with the node
// running or not.
type Operator struct {
	NodeID string
	key    ed25519.PrivateKey
	// ValidatorKey is the home's consensus public key.
	ValidatorKey []byte
	api          tokenimv1connect.NodeServiceClient
}

// NewOperator loads the node key of home; apiURL is the node to talk to.
func NewOperator(home, apiURL string) (*Operator, error) {
	cfgDir := filepath.Join(Dir(home), "config")
	nk, err := p2p.LoadNodeKey(filepath.Join(cfgDir, "node_key.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotInitialized, err)
	}
	pv := privval.LoadFilePVEmptyState(filepath.Join(cfgDir, "priv_validator_key.json"), "")
	return &Operator{
		NodeID: string(nk.ID()), key: ed25519.PrivateKey(nk.PrivKey.Bytes()), ValidatorKey: pv.Key.PubKey.Bytes(),
		api: tokenimv1connect.NewNodeServiceClient(http.DefaultClient, apiURL),
	}, nil
}

// Validators asks the node for the validator set and proposals.
func (o *Operator) Validators(ctx context.Context) (*tokenimv1.ValidatorsResponse, error) {
	res, err := o.api.Validators(ctx, connect.NewRequest(&tokenimv1.ValidatorsRequest{}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// Propose proposes setting a validator's power (0 removes it).
func (o *Operator) Propose(ctx context.Context, validatorKey []byte, power int64) (*tokenimv1.BroadcastTxResponse, error) {
	return o.send(ctx, &tokenimv1.TxBody_ProposeValidator{ProposeValidator: &tokenimv1.ProposeValidator{ValidatorKey: validatorKey, Power: power}})
}

// Approve approves an open proposal.
func (o *Operator) Approve(ctx context.Context, id uint64) (*tokenimv1.BroadcastTxResponse, error) {
	return o.send(ctx, &tokenimv1.TxBody_ApproveValidator{ApproveValidator: &tokenimv1.ApproveValidator{ProposalId: id}})
}

func (o *Operator) send(ctx context.Context, msg any) (*tokenimv1.BroadcastTxResponse, error) {
	st, err := o.api.Status(ctx, connect.NewRequest(&tokenimv1.StatusRequest{}))
	if err != nil {
		return nil, err
	}
	nodes, err := o.api.ListNodes(ctx, connect.NewRequest(&tokenimv1.ListNodesRequest{}))
	if err != nil {
		return nil, err
	}
	seq := uint64(0)
	for _, rec := range nodes.Msg.Nodes {
		if rec.NodeId == o.NodeID {
			seq = rec.Sequence
		}
	}
	body := &tokenimv1.TxBody{ChainId: st.Msg.ChainId, Signer: ledger.NodeSigner(o.NodeID), Sequence: seq}
	switch m := msg.(type) {
	case *tokenimv1.TxBody_ProposeValidator:
		body.Msg = m
	case *tokenimv1.TxBody_ApproveValidator:
		body.Msg = m
	}
	raw, err := ledger.SignTx(body, o.key)
	if err != nil {
		return nil, err
	}
	res, err := o.api.BroadcastTx(ctx, connect.NewRequest(&tokenimv1.BroadcastTxRequest{Tx: raw}))
	if err != nil {
		return nil, err
	}
	if res.Msg.Code != ledger.CodeOK {
		return res.Msg, fmt.Errorf("%w (%s)", ledger.CodeError(res.Msg.Code), res.Msg.Log)
	}
	return res.Msg, nil
}

// CometValidators is the size of CometBFT's validator set at the latest
// height (-1 if it cannot be read).
func (n *Node) CometValidators() int {
	if n.rpcEnv == nil {
		return -1
	}
	res, err := n.rpcEnv.Validators(&rpctypes.Context{}, nil, nil, nil)
	if err != nil {
		return -1
	}
	return res.Total
}

// GetPolicy serves a deployed policy by name or id.
func (s *nodeService) GetPolicy(_ context.Context, req *connect.Request[tokenimv1.GetPolicyRequest]) (*connect.Response[tokenimv1.GetPolicyResponse], error) {
	r, h := s.n.app.Committed()
	rec, err := ledger.GetPolicy(r, req.Msg.NameOrId)
	switch {
	case errors.Is(err, ledger.ErrUnknownPolicy):
		return nil, connect.NewError(connect.CodeNotFound, err)
	case err != nil:
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(&tokenimv1.GetPolicyResponse{Policy: rec, Height: h}), nil
}

// GetGroup serves a group's record.
func (s *nodeService) GetGroup(_ context.Context, req *connect.Request[tokenimv1.GetGroupRequest]) (*connect.Response[tokenimv1.GetGroupResponse], error) {
	r, h := s.n.app.Committed()
	g, err := ledger.GetGroup(r, req.Msg.Name)
	switch {
	case errors.Is(err, ledger.ErrUnknownGroup):
		return nil, connect.NewError(connect.CodeNotFound, err)
	case err != nil:
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(&tokenimv1.GetGroupResponse{Group: g, Height: h}), nil
}

// ListGroups serves the groups a handle belongs to.
func (s *nodeService) ListGroups(_ context.Context, req *connect.Request[tokenimv1.ListGroupsRequest]) (*connect.Response[tokenimv1.ListGroupsResponse], error) {
	h, err := ledger.NormalizeHandle(req.Msg.Handle)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	r, height := s.n.app.Committed()
	gs, err := ledger.GroupsOf(r, h)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(&tokenimv1.ListGroupsResponse{Groups: gs, Height: height}), nil
}

// GetConversationPolicy serves the policy of a 1:1 conversation.
func (s *nodeService) GetConversationPolicy(_ context.Context, req *connect.Request[tokenimv1.GetConversationPolicyRequest]) (*connect.Response[tokenimv1.GetConversationPolicyResponse], error) {
	r, _ := s.n.app.Committed()
	rec, err := ledger.ConversationPolicyRecord(r, req.Msg.A, req.Msg.B)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(&tokenimv1.GetConversationPolicyResponse{Policy: rec}), nil
}
