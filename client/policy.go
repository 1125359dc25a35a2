package client

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/policy"
)

// Errors about policies.
var (
	ErrInvalidPolicy = ledger.ErrInvalidPolicy
	ErrPolicyExists  = ledger.ErrPolicyExists
	ErrUnknownPolicy = ledger.ErrUnknownPolicy
)

// DeployPolicy puts a policy contract on chain under name and returns its
// id. The source is compiled here first, so a bad policy fails with CEL's
// error before any transaction.
func (c *Client) DeployPolicy(ctx context.Context, name, source string) (string, error) {
	if _, err := policy.Compile(source); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	acct, err := c.Lookup(ctx, c.Handle())
	if err != nil {
		return "", err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return "", err
	}
	body := &tokenimv1.TxBody{ChainId: st.ChainId, Signer: c.Handle(), Sequence: acct.Sequence,
		Msg: &tokenimv1.TxBody_DeployPolicy{DeployPolicy: &tokenimv1.DeployPolicy{Name: name, Source: source}}}
	if _, err := c.broadcast(ctx, body); err != nil {
		return "", err
	}
	return policy.ID(source), nil
}

// GetPolicy reads a deployed policy by name or id.
func GetPolicy(ctx context.Context, cfg Config, nameOrID string) (*tokenimv1.PolicyRecord, error) {
	c := dial(cfg)
	res, err := c.node.GetPolicy(ctx, connect.NewRequest(&tokenimv1.GetPolicyRequest{NameOrId: nameOrID}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPolicy, nameOrID)
	}
	if err != nil {
		return nil, c.netErr("get policy", err)
	}
	return res.Msg.Policy, nil
}
