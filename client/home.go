package client

import (
	"context"
	"slices"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// MaxHomeNodes is how many home nodes an account names on chain.
const MaxHomeNodes = 3

// ensureHome makes the node this client reads from one of the account's
// home nodes on chain, so senders' nodes replicate its mail there. A node
// that is not in the registry (a single-node network before it registers)
// needs nothing. The newest home nodes are kept.
func (c *Client) ensureHome(ctx context.Context, nodeID string) error {
	c.tokMu.Lock()
	done := c.homeOK
	c.tokMu.Unlock()
	if done {
		return nil
	}
	nodes, err := c.node.ListNodes(ctx, connect.NewRequest(&tokenimv1.ListNodesRequest{}))
	if err != nil {
		return c.netErr("list nodes", err)
	}
	registered := slices.ContainsFunc(nodes.Msg.Nodes, func(r *tokenimv1.NodeRecord) bool { return r.NodeId == nodeID })
	if registered {
		acct, err := c.Lookup(ctx, c.Handle())
		if err != nil {
			return err
		}
		if !slices.Contains(acct.HomeNodes, nodeID) {
			home := append(slices.Clone(acct.HomeNodes), nodeID)
			if len(home) > MaxHomeNodes {
				home = home[len(home)-MaxHomeNodes:]
			}
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			body := &tokenimv1.TxBody{ChainId: st.ChainId, Signer: c.Handle(), Sequence: acct.Sequence,
				Msg: &tokenimv1.TxBody_SetHomeNodes{SetHomeNodes: &tokenimv1.SetHomeNodes{NodeIds: home}}}
			if _, err := c.broadcast(ctx, body); err != nil {
				return err
			}
		}
		c.tokMu.Lock()
		c.homeOK = true
		c.tokMu.Unlock()
	}
	return nil
}

// HomeNodes returns the account's home nodes as the chain records them.
func (c *Client) HomeNodes(ctx context.Context) ([]string, error) {
	acct, err := c.Lookup(ctx, c.Handle())
	if err != nil {
		return nil, err
	}
	return acct.HomeNodes, nil
}
