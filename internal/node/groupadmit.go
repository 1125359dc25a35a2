package node

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/policy"
	"github.com/tokenim/tokenim/internal/relay"
)

// groupGate checks group envelopes against the group's policy at
// admission: the sender may post (can_post, max_size, rate,
// read_only_after) and each recipient may read (can_read), with the chain
// state of the latest committed height.
type groupGate struct {
	mu     sync.Mutex
	recent map[string][]post // group/sender → posts admitted in the window
	gen    uint64            // counts changes to recent
	saveMu sync.Mutex        // one save at a time
	saved  uint64            // gen last saved
}

// post is one counted message: a group message is one ciphertext sent as a
// copy per member, possibly over several Send calls; it counts once. The
// copies seen (recipient → envelope id) tell a continuation or a retry of
// the post (new recipients, or the same copies again) from the same
// ciphertext sent again as a new message (a recipient that had it gets it
// under another id): that counts again.
type post struct {
	at     time.Time
	ct     [sha256.Size]byte
	copies map[uint64]uint64 // hash of the recipient → first bytes of the envelope id; nil after postCoverage
}

// postCoverage is how long after its first copy a post's copies are
// remembered: later, the same ciphertext counts as a new message.
const postCoverage = 30 * time.Second

// copyOf is one envelope of a post: its recipient and id.
type copyOf struct {
	to string
	id []byte
}

// groupCheck is one group's state for one Send call.
type groupCheck struct {
	g       *tokenimv1.GroupRecord
	p       *policy.Policy
	v       policy.Vars
	expires int64
	byRole  map[string]readDecision // can_read per role, when it does not use target
}

// admitGroup checks the GROUP envelopes of one Send call: the post once per
// group, the read rule once per recipient.
func (n *Node) admitGroup(envs []*tokenimv1.Envelope, me string, now time.Time) (err error) {
	r, height := n.app.Committed()
	defer func() { err = asOfHeight(err, height) }()
	var order []string
	byGroup := map[string][]*tokenimv1.Envelope{}
	for _, e := range envs {
		if e.Type != tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP {
			continue
		}
		if _, ok := byGroup[e.Group]; !ok {
			order = append(order, e.Group)
		}
		byGroup[e.Group] = append(byGroup[e.Group], e)
	}
	for _, group := range order {
		es := byGroup[group]
		gc, err := n.loadGroupCheck(r, group, me, now)
		if err != nil {
			return err
		}
		var copies []copyOf
		var first *tokenimv1.Envelope
		var readers []string
		for _, e := range es {
			if relay.IsGroupPost(e) {
				// Stored once, in the group's mailbox, for the members
				// allowed to read it.
				if readers == nil {
					if readers, err = gc.readersOf(me); err != nil {
						return err
					}
				}
				e.Readers = readers
				if err := n.gate.checkPost(gc.p, gc.v, e.Ciphertext, []copyOf{{to: relay.GroupMailbox(group), id: e.Id}}, group+"/"+me, now); err != nil {
					return err
				}
				continue
			}
			if err := gc.mayRead(e.To); err != nil {
				return err
			}
			copies = append(copies, copyOf{to: e.To, id: e.Id})
			if first == nil {
				first = e
			}
		}
		// The post is counted toward the rate last, once it is admitted.
		if first != nil {
			if err := n.gate.checkPost(gc.p, gc.v, first.Ciphertext, copies, group+"/"+me, now); err != nil {
				return err
			}
		}
		for _, e := range es {
			e.ExpiresAtMs = gc.expires
		}
	}
	return nil
}

// mayRead evaluates can_read for one recipient. Every other input is the
// same for all recipients of the call, so a rule that does not refer to
// target decides alike for all recipients of one role: it is evaluated
// once per role (a post to 1,000 members: one evaluation, not 1,000).
func (gc *groupCheck) mayRead(to string) error {
	if r := gc.readDecision(to); r.err != nil || !r.d.Allowed {
		return denied(r.d, r.err, "@"+to)
	}
	return nil
}

// readDecision is can_read's decision for one recipient, once per role
// when the rule does not refer to target.
func (gc *groupCheck) readDecision(to string) readDecision {
	v := gc.v
	v.Action, v.Target, v.TargetRole = "read", to, ledger.Role(gc.g, to)
	perRole := !gc.p.Uses("can_read", "target")
	r, ok := gc.byRole[v.TargetRole]
	if !perRole || !ok {
		r.d, r.err = gc.p.Decide(v)
		if perRole {
			if gc.byRole == nil {
				gc.byRole = map[string]readDecision{}
			}
			gc.byRole[v.TargetRole] = r
		}
	}
	return r
}

type readDecision struct {
	d   policy.Decision
	err error
}

// loadGroupCheck reads group and its policy at the committed height and
// computes what a post by me admitted now gets (its expiry).
func (n *Node) loadGroupCheck(r ledger.Reader, group, me string, now time.Time) (*groupCheck, error) {
	g, err := n.group(r, group)
	if errors.Is(err, ledger.ErrUnknownGroup) {
		return nil, connect.NewError(connect.CodeNotFound, err)
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	p, err := ledger.PolicyOf(r, g)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	gc := &groupCheck{g: g, p: p, v: ledger.GroupVars(g, me, now)}
	if gc.expires, err = expiry(p, gc.v, now); err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return gc, nil
}

// admitDirect applies a 1:1 conversation's policy, if it has one: the
// sender may post (size, rate, read-only date, can_post with both parties
// as members) and the envelope gets the policy's expiry.
func (n *Node) admitDirect(envs []*tokenimv1.Envelope, me string, now time.Time) (err error) {
	r, height := n.app.Committed()
	defer func() { err = asOfHeight(err, height) }()
	for _, e := range envs {
		if e.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP {
			continue
		}
		p, err := ledger.ConversationPolicy(r, me, e.To)
		if err != nil {
			return connect.NewError(connect.CodeInternal, err)
		}
		if p == nil {
			continue
		}
		v := ledger.ConversationVars(me, e.To, now)
		if err := n.gate.checkPost(p, v, e.Ciphertext, []copyOf{{to: e.To, id: e.Id}}, "dm/"+me+"/"+e.To, now); err != nil {
			return err
		}
		if e.ExpiresAtMs, err = expiry(p, v, now); err != nil {
			return connect.NewError(connect.CodeInternal, err)
		}
	}
	return nil
}

// expiry is when the policy's retention ends for something admitted now
// (0: kept, under legal hold).
func expiry(p *policy.Policy, v policy.Vars, now time.Time) (int64, error) {
	lim, err := p.Limits(v)
	if err != nil || lim.LegalHold || lim.Retention <= 0 {
		return 0, err
	}
	return now.Add(lim.Retention).UnixMilli(), nil
}

// checkPost applies the post rules (read_only_after, max_size, rate,
// can_post) to a message with ciphertext ct whose copies in this call are
// copies; key names the sender's rate counter. An allowed post is counted.
func (gg *groupGate) checkPost(p *policy.Policy, v policy.Vars, ct []byte, copies []copyOf, key string, now time.Time) error {
	lim, err := p.Limits(v)
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	var d policy.Decision
	gg.count(key, ct, copies, now, lim.RateWindow, func(sent int64) bool {
		v.Action, v.Size, v.SentInWindow = "post", int64(len(ct)), sent
		d, err = p.Decide(v)
		return err == nil && d.Allowed
	})
	if err != nil || !d.Allowed {
		return denied(d, err, "post")
	}
	return nil
}

// observe counts a post this node stores for another entry node (a
// replica's Replicate): a sender who posts through several nodes meets,
// at each node that keeps a mailbox of the conversation, its posts through
// the others too.
func (gg *groupGate) observe(key string, ct []byte, copies []copyOf, now time.Time, window time.Duration) {
	gg.count(key, ct, copies, now, window, func(int64) bool { return true })
}

// count drops key's posts older than window, asks allow with the number
// of messages sent in it (a continuation of a counted post not counted
// again), and if allowed records the post.
func (gg *groupGate) count(key string, ct []byte, copies []copyOf, now time.Time, window time.Duration, allow func(sent int64) bool) {
	gg.mu.Lock()
	defer gg.mu.Unlock()
	if gg.recent == nil {
		gg.recent = map[string][]post{}
	}
	gg.gen++
	sum := sha256.Sum256(ct)
	kept, same := gg.recent[key][:0], -1
	for _, q := range gg.recent[key] {
		if now.Sub(q.at) < window {
			kept = append(kept, q)
			if now.Sub(q.at) >= postCoverage {
				q.copies = nil // counted; no longer continued
				kept[len(kept)-1] = q
			}
			if q.ct == sum && q.copies != nil && q.continuedBy(copies) {
				same = len(kept) - 1
			}
		}
	}
	sent := int64(len(kept))
	if same >= 0 {
		sent-- // more copies of a message counted already
	}
	if allow(sent) {
		if same < 0 {
			kept = append(kept, post{at: now, ct: sum, copies: make(map[uint64]uint64, len(copies))})
			same = len(kept) - 1
		}
		kept[same].add(copies)
	}
	if len(kept) == 0 {
		delete(gg.recent, key)
		return
	}
	gg.recent[key] = kept
}

// observeReplicated counts the posts among envelopes a peer asked this
// node to store, with the rate window of their conversation's policy at
// this node's height (a conversation it does not know yet is skipped).
func (n *Node) observeReplicated(envs []*tokenimv1.Envelope, now time.Time) {
	r, _ := n.app.Committed()
	type postKey struct{ key, group, from, to string }
	var order []postKey
	copies := map[postKey][]copyOf{}
	cts := map[postKey][]byte{}
	for _, e := range envs {
		k := postKey{key: "dm/" + e.From + "/" + e.To, from: e.From, to: e.To}
		if e.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP {
			k = postKey{key: e.Group + "/" + e.From, group: e.Group, from: e.From}
		}
		if _, ok := copies[k]; !ok {
			order = append(order, k)
			cts[k] = e.Ciphertext
		}
		copies[k] = append(copies[k], copyOf{to: mailboxOf(e), id: e.Id})
	}
	for _, k := range order {
		var p *policy.Policy
		var v policy.Vars
		if k.group != "" {
			g, err := n.group(r, k.group)
			if err != nil {
				continue
			}
			if p, err = ledger.PolicyOf(r, g); err != nil {
				continue
			}
			v = ledger.GroupVars(g, k.from, now)
		} else {
			var err error
			if p, err = ledger.ConversationPolicy(r, k.from, k.to); err != nil || p == nil {
				continue
			}
			v = ledger.ConversationVars(k.from, k.to, now)
		}
		lim, err := p.Limits(v)
		if err != nil {
			continue
		}
		n.gate.observe(k.key, cts[k], copies[k], now, lim.RateWindow)
	}
}

// continuedBy reports whether copies belong to post q: no recipient of
// copies had q under another envelope id.
func (q *post) continuedBy(copies []copyOf) bool {
	for _, c := range copies {
		if had, ok := q.copies[nameHash(c.to)]; ok && had != idPrefix(c.id) {
			return false
		}
	}
	return true
}

func (q *post) add(copies []copyOf) {
	for _, c := range copies {
		q.copies[nameHash(c.to)] = idPrefix(c.id)
	}
}

// nameHash and idPrefix keep a post's copies small and free of pointers
// (the collector need not scan them).
func nameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

func idPrefix(id []byte) uint64 {
	var p [8]byte
	copy(p[:], id)
	return binary.BigEndian.Uint64(p[:])
}

// asOfHeight says in a policy's refusal which chain state decided it: the
// sender can replay the decision (`tokenim policy test`, the group as
// `group show --at` proves it at that height).
func asOfHeight(err error, height int64) error {
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodePermissionDenied {
		return err
	}
	return connect.NewError(ce.Code(), fmt.Errorf("%w (decided on the chain's state at height %d)", ce.Unwrap(), height))
}

func denied(d policy.Decision, err error, what string) error {
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%w: %s: rule %s: %s", ledger.ErrDenied, what, d.Rule, d.Reason))
}
