package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/placement"
	"github.com/tokenim/tokenim/internal/relay"
)

// Group mailboxes (relay/group.go): a group post is stored once, in the
// group's mailbox, with the members its policy lets read it; each member's
// stream reads it from there. Its replicas are the mailbox's rendezvous
// winners plus every member's home nodes, so a member finds it where it
// reads.

// mailboxOf is the mailbox an admitted envelope is stored in.
func mailboxOf(e *tokenimv1.Envelope) string {
	if relay.IsGroupPost(e) {
		return relay.GroupMailbox(e.Group)
	}
	return e.To
}

// groupReplicaSet is the replica set of group's mailbox. It is cached per
// member count and epoch (every membership change moves one of them: an
// addition the count, a removal or leave the epoch).
func (n *Node) groupReplicaSet(group string) *replicaSet {
	reg := n.registry()
	if len(reg.ids) == 0 {
		return reg.alone
	}
	mb := relay.GroupMailbox(group)
	r, h := n.app.Committed()
	g, err := n.group(r, group)
	if err != nil {
		nodes := placement.MailboxReplicas(mb, reg.ids, reg.r, nil)
		return &replicaSet{nodes: nodes, key: strings.Join(nodes, ",")}
	}
	key := fmt.Sprintf("%s/%d/%d", mb, len(g.Members), g.Epoch)
	if v, ok := reg.replicas.Load(key); ok {
		return v.(*replicaSet)
	}
	var homes []string
	for _, m := range g.Members {
		if acct, err := ledger.GetAccount(r, m.Handle); err == nil {
			for _, id := range acct.HomeNodes {
				if !slices.Contains(homes, id) {
					homes = append(homes, id)
				}
			}
		}
	}
	slices.Sort(homes)
	nodes := placement.MailboxReplicas(mb, reg.ids, reg.r, homes)
	rs := &replicaSet{nodes: nodes, key: strings.Join(nodes, ",")}
	if h == reg.height {
		reg.replicas.Store(key, rs)
	}
	return rs
}

// readersOf decides who may read a post by me to gc's group: every other
// member whose can_read allows it.
func (gc *groupCheck) readersOf(me string) ([]string, error) {
	readers := make([]string, 0, len(gc.g.Members))
	for _, m := range gc.g.Members {
		if m.Handle == me {
			continue
		}
		r := gc.readDecision(m.Handle)
		if r.err != nil {
			return nil, connect.NewError(connect.CodeInternal, r.err)
		}
		if r.d.Allowed {
			readers = append(readers, m.Handle)
		}
	}
	return readers, nil
}

// memberMailboxes is what a member's stream reads: its own mailbox and
// its groups'.
type memberMailboxes struct {
	height    int64
	groups    []string // sorted
	mailboxes []string // relay.GroupMailbox of each
}

// groupsOf is what me's stream reads: the groups me is a member of now,
// and those it named (reader lists decide what it gets from them).
func (n *Node) groupsOf(me string, named []string) memberMailboxes {
	r, h := n.app.Committed()
	gs, err := ledger.GroupsOf(r, me)
	if err != nil {
		n.log.Warn("reading a member's groups failed", "err", err)
	}
	gs = slices.Clone(gs)
	for _, g := range named {
		if n.knownGroup(g) {
			gs = append(gs, g)
		}
	}
	slices.Sort(gs)
	gs = slices.Compact(gs)
	mbs := make([]string, len(gs))
	for i, g := range gs {
		mbs[i] = relay.GroupMailbox(g)
	}
	return memberMailboxes{height: h, groups: gs, mailboxes: mbs}
}

// knownGroup reports whether group exists (committed).
func (n *Node) knownGroup(group string) bool {
	if _, ok := n.knownGroups.Load(group); ok {
		return true
	}
	r, _ := n.app.Committed()
	if raw, err := r.Get(ledger.GroupStateKey(group)); err != nil || raw == nil {
		return false
	}
	n.knownGroups.Store(group, struct{}{})
	return true
}

// groupPullEvery spaces a node's pulls of one group mailbox from its
// other replicas: a group's mailbox holds every post its retention keeps,
// and its members' streams start all the time.
const groupPullEvery = 5 * time.Minute

// pullGroupMailbox pulls a group's mailbox from its other replicas in the
// background, at most every groupPullEvery (the stream reads what arrives:
// appending wakes it).
func (n *Node) pullGroupMailbox(mailbox string) {
	now := time.Now()
	if v, ok := n.groupPulls.Load(mailbox); ok && now.Sub(v.(time.Time)) < groupPullEvery {
		return
	}
	n.groupPulls.Store(mailbox, now)
	if len(n.otherReplicas(mailbox)) == 0 {
		return
	}
	go n.pullMailbox(context.Background(), mailbox)
}

// groupsRecheck is how often a live stream looks for groups its member
// joined or left (when the chain moved).
const groupsRecheck = time.Second

// pruner deletes group posts every reader has passed: an AckGroup marks
// the mailbox, and the sweeper prunes the marked ones.
type pruner struct {
	mu    sync.Mutex
	dirty map[string]struct{} // group names
}

func (p *pruner) mark(group string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dirty == nil {
		p.dirty = map[string]struct{}{}
	}
	p.dirty[group] = struct{}{}
}

func (p *pruner) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.dirty))
	for g := range p.dirty {
		out = append(out, g)
	}
	clear(p.dirty)
	slices.Sort(out)
	return out
}

// pruneGroups prunes the group mailboxes acknowledged in since the last
// call. A post goes once every reader who reads from this node has passed
// it here: a member whose home nodes include this one (on a single node,
// every member). A reader who is no longer a member does not hold a post
// back, nor does one whose home is elsewhere: its home node keeps the post
// until it has read it there. When every member reads here, each reader
// has the posts, and the other replicas are told to delete them too.
func (n *Node) pruneGroups() int {
	total := 0
	for _, group := range n.prune.take() {
		r, _ := n.app.Committed()
		g, err := n.group(r, group)
		if err != nil && !errors.Is(err, ledger.ErrUnknownGroup) {
			n.log.Warn("pruning a group mailbox failed", "err", err)
			continue
		}
		local := n.localReaders(group, g)
		if len(local) == 0 {
			// No member reads here (yet: a client names its node a home
			// node before it reads there). Pruning would go by no one's
			// reading: the posts stay until their retention, a spare copy
			// for a home node that was down when they were sent.
			continue
		}
		mb := relay.GroupMailbox(group)
		ids, err := n.relay.Prune(mb, func(m string) bool { return local[m] })
		if err != nil {
			n.log.Warn("pruning a group mailbox failed", "err", err)
			continue
		}
		if g != nil && len(local) == len(g.Members) {
			n.forgetElsewhere(mb, ids)
		}
		total += len(ids)
	}
	return total
}

// localReaders are g's members who read from this node: those whose home
// nodes include it (on a single node, every member). Cached like the
// group's replica set (per member count and epoch; a home-node change
// drops it), so a busy group's sweep does not read every member's account
// every second.
func (n *Node) localReaders(group string, g *tokenimv1.GroupRecord) map[string]bool {
	local := map[string]bool{}
	if g == nil {
		return local
	}
	reg := n.registry()
	alone := len(reg.ids) == 0
	key := fmt.Sprintf("%s/%d/%d/local", relay.GroupMailbox(group), len(g.Members), g.Epoch)
	if !alone {
		if v, ok := reg.replicas.Load(key); ok {
			return v.(map[string]bool)
		}
	}
	r, h := n.app.Committed()
	for _, m := range g.Members {
		if alone {
			local[m.Handle] = true
		} else if acct, err := ledger.GetAccount(r, m.Handle); err == nil && slices.Contains(acct.HomeNodes, n.nodeID) {
			local[m.Handle] = true
		}
	}
	if !alone && h == reg.height {
		reg.replicas.Store(key, local)
	}
	return local
}

// groupRecords keeps each group's decoded record while its stored value
// stays the same: a post to a 1,000-member group read and decoded the
// group's ~15 KB record (a third of what a post allocated) every time.
type groupRecords struct {
	mu sync.Mutex
	m  map[string]cachedGroup
}

type cachedGroup struct {
	raw []byte
	g   *tokenimv1.GroupRecord
}

// groupRecordsCap bounds the cache (it starts over when full).
const groupRecordsCap = 4096

// group reads a group's record at r as ledger.GetGroup does; the record is
// shared: callers must not modify it.
func (n *Node) group(r ledger.Reader, name string) (*tokenimv1.GroupRecord, error) {
	raw, err := r.Get(ledger.GroupStateKey(name))
	if err != nil || raw == nil {
		return ledger.GetGroup(r, name) // its error
	}
	n.groupCache.mu.Lock()
	c, ok := n.groupCache.m[name]
	n.groupCache.mu.Unlock()
	if ok && bytes.Equal(c.raw, raw) {
		return c.g, nil
	}
	g, err := ledger.GetGroup(r, name)
	if err != nil {
		return nil, err
	}
	n.groupCache.mu.Lock()
	defer n.groupCache.mu.Unlock()
	if n.groupCache.m == nil || len(n.groupCache.m) >= groupRecordsCap {
		n.groupCache.m = map[string]cachedGroup{}
	}
	n.groupCache.m[name] = cachedGroup{raw: bytes.Clone(raw), g: g}
	return g, nil
}
