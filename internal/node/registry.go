package node

import (
	"slices"
	"strings"
	"sync"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/placement"
	"github.com/tokenim/tokenim/internal/relay"
)

// registry is the node registry and replication factor as of the latest
// committed height, cached per height.
type registry struct {
	height int64
	nodes  map[string]*tokenimv1.NodeRecord
	ids    []string // sorted
	r      int
	// handle → *replicaSet: mailbox placement at height (and, under keys
	// starting with a group's mailbox name, that group's replica set and
	// the members who read from this node: groupmailbox.go). Carried to the
	// next height's registry when the nodes and replication factor are
	// the same, less the accounts whose home nodes changed in between: a
	// new block does not make the next post to a 1,000-member group read
	// 1,000 accounts again.
	replicas sync.Map
	alone    *replicaSet // this node alone: the set while the registry is empty
}

// replicaSet is a mailbox's replica set and its key (the ids joined).
type replicaSet struct {
	nodes []string
	key   string
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
	reg := &registry{height: h, nodes: map[string]*tokenimv1.NodeRecord{}, r: 3,
		alone: &replicaSet{nodes: []string{n.nodeID}, key: n.nodeID}}
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
	if prev := n.reg.cur; prev != nil && prev.r == reg.r && slices.Equal(prev.ids, reg.ids) {
		if changed, ok := n.app.HomeChanges(prev.height); ok {
			prev.replicas.Range(func(k, v any) bool {
				reg.replicas.Store(k, v)
				return true
			})
			for _, h := range changed {
				reg.replicas.Delete(h)
			}
			if len(changed) > 0 { // a member's home nodes: its groups' mailboxes too
				reg.replicas.Range(func(k, _ any) bool {
					if relay.IsGroupMailbox(k.(string)) {
						reg.replicas.Delete(k)
					}
					return true
				})
			}
		}
	}
	n.reg.cur = reg
	return reg
}

// mailboxReplicas is the replica set of a recipient's mailbox. With an
// empty registry (a node that has not registered yet, a single-node
// network) it is this node alone.
func (n *Node) mailboxReplicas(handle string) []string {
	return n.mailboxReplicaSet(handle).nodes
}

// mailboxReplicaSet is mailboxReplicas with the set's key; callers must not
// modify it.
func (n *Node) mailboxReplicaSet(handle string) *replicaSet {
	if relay.IsGroupMailbox(handle) {
		return n.groupReplicaSet(strings.TrimPrefix(handle, relay.GroupMailboxPrefix))
	}
	reg := n.registry()
	if len(reg.ids) == 0 {
		return reg.alone
	}
	if v, ok := reg.replicas.Load(handle); ok {
		return v.(*replicaSet)
	}
	var home []string
	r, h := n.app.Committed()
	acct, err := ledger.GetAccount(r, handle)
	if err == nil {
		home = acct.HomeNodes
	}
	nodes := placement.MailboxReplicas(handle, reg.ids, reg.r, home)
	rs := &replicaSet{nodes: nodes, key: strings.Join(nodes, ",")}
	if err == nil && h == reg.height {
		reg.replicas.Store(handle, rs)
	}
	return rs
}
