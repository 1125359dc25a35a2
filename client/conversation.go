package client

import (
	"context"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/policy"
)

// AttachPolicy attaches a deployed policy (name or id; "" detaches) to the
// 1:1 conversation with peer — e.g. disappearing messages. Either party may
// set it; it applies both ways.
func (c *Client) AttachPolicy(ctx context.Context, peer, policyName string) error {
	h, err := ledger.NormalizeHandle(peer)
	if err != nil {
		return err
	}
	acct, err := c.Lookup(ctx, c.Handle())
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	body := &tokenimv1.TxBody{ChainId: st.ChainId, Signer: c.Handle(), Sequence: acct.Sequence,
		Msg: &tokenimv1.TxBody_SetConversationPolicy{SetConversationPolicy: &tokenimv1.SetConversationPolicy{Peer: h, Policy: policyName}}}
	_, err = c.broadcast(ctx, body)
	return err
}

// directExpiry is when the conversation's policy deletes a message sent
// to peer now (zero: kept), as the nodes compute it.
func (c *Client) directExpiry(ctx context.Context, peer string, now time.Time) (time.Time, error) {
	res, err := c.node.GetConversationPolicy(ctx, connect.NewRequest(&tokenimv1.GetConversationPolicyRequest{A: c.Handle(), B: peer}))
	if err != nil || res.Msg.Policy == nil {
		return time.Time{}, err
	}
	p, err := policy.Compile(res.Msg.Policy.Source)
	if err != nil {
		return time.Time{}, err
	}
	lim, err := p.Limits(ledger.ConversationVars(c.Handle(), peer, now)) // as the nodes compute it
	if err != nil || lim.LegalHold || lim.Retention <= 0 {
		return time.Time{}, err
	}
	return now.Add(lim.Retention).UTC(), nil
}
