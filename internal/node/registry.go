package node

import (
	"slices"
	"sync"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/placement"
)

// registry is the node registry and replication factor as of the latest
// committed height, cached per height.
type registry struct {
	height int64
	nodes  map[string]*tokenimv1.NodeRecord
	ids    []string // sorted
	r      int
	homes  sync.Map // handle → []string: accounts' home nodes at height
}

type registryCache struct {
	mu  sync.Mutex
	cur *registry
}

// registry returns the registry view of the latest committed state.
func (n *Node) registry() *registry {
	r, h := n.app.Committed()
	n.reg.mu.Lock()
	defer n.reg.mu.Unlock()
	if n.reg.cur != nil && n.reg.cur.height == h {
		return n.reg.cur
	}
	reg := &registry{height: h, nodes: map[string]*tokenimv1.NodeRecord{}, r: 3}
	if list, err := ledger.ListNodes(r); err == nil {
		for _, rec := range list {
			reg.nodes[rec.NodeId] = rec
			reg.ids = append(reg.ids, rec.NodeId)
		}
	}
	slices.Sort(reg.ids)
	if p, err := ledger.GetParams(r); err == nil && p.ReplicationFactor > 0 {
		reg.r = int(p.ReplicationFactor)
	}
	n.reg.cur = reg
	return reg
}

// mailboxReplicas is the replica set of a recipient's mailbox. With an
// empty registry (a node that has not registered yet, a single-node
// network) it is this node alone.
func (n *Node) mailboxReplicas(handle string) []string {
	reg := n.registry()
	if len(reg.ids) == 0 {
		return []string{n.nodeID}
	}
	var home []string
	if v, ok := reg.homes.Load(handle); ok {
		home = v.([]string)
	} else if r, h := n.app.Committed(); r != nil && h == reg.height {
		if acct, err := ledger.GetAccount(r, handle); err == nil {
			home = acct.HomeNodes
			reg.homes.Store(handle, home)
		}
	}
	return placement.MailboxReplicas(handle, reg.ids, reg.r, home)
}
