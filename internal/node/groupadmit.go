package node

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/policy"
)

// groupGate checks group envelopes against the group's policy at
// admission: the sender may post (can_post, max_size, rate,
// read_only_after) and each recipient may read (can_read), with the chain
// state of the latest committed height.
type groupGate struct {
	mu     sync.Mutex
	recent map[string][]post // group/sender → posts admitted in the window
}

// post is one counted message: a group message is one ciphertext sent as a
// copy per member, possibly over several Send calls; it counts once.
type post struct {
	at time.Time
	ct [sha256.Size]byte
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
func (n *Node) admitGroup(envs []*tokenimv1.Envelope, me string, now time.Time) error {
	r, _ := n.app.Committed()
	checks := map[string]*groupCheck{}
	for _, e := range envs {
		if e.Type != tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP {
			continue
		}
		gc, ok := checks[e.Group]
		if !ok {
			var err error
			if gc, err = n.checkGroupPost(r, e, me, now); err != nil {
				return err
			}
			checks[e.Group] = gc
		}
		e.ExpiresAtMs = gc.expires
		if err := gc.mayRead(e.To); err != nil {
			return err
		}
	}
	return nil
}

// mayRead evaluates can_read for one recipient. Every other input is the
// same for all recipients of the call, so a rule that does not refer to
// target decides alike for all recipients of one role: it is evaluated
// once per role (a post to 1,000 members: one evaluation, not 1,000).
func (gc *groupCheck) mayRead(to string) error {
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
	if r.err != nil || !r.d.Allowed {
		return denied(r.d, r.err, "@"+to)
	}
	return nil
}

type readDecision struct {
	d   policy.Decision
	err error
}

func (n *Node) checkGroupPost(r ledger.Reader, e *tokenimv1.Envelope, me string, now time.Time) (*groupCheck, error) {
	g, err := ledger.GetGroup(r, e.Group)
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
	gc := &groupCheck{g: g, p: p, v: groupVars(g, me, now)}
	if err := n.gate.checkPost(p, gc.v, e, e.Group+"/"+me, now); err != nil {
		return nil, err
	}
	if gc.expires, err = expiry(p, gc.v, now); err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return gc, nil
}

// admitDirect applies a 1:1 conversation's policy, if it has one: the
// sender may post (size, rate, read-only date, can_post with both parties
// as members) and the envelope gets the policy's expiry.
func (n *Node) admitDirect(envs []*tokenimv1.Envelope, me string, now time.Time) error {
	r, _ := n.app.Committed()
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
		members := []string{me, e.To}
		slices.Sort(members)
		v := policy.Vars{Sender: me, SenderRole: ledger.RoleMember, Target: e.To, TargetRole: ledger.RoleMember, Members: members, Now: now}
		if err := n.gate.checkPost(p, v, e, "dm/"+me+"/"+e.To, now); err != nil {
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

func groupVars(g *tokenimv1.GroupRecord, me string, now time.Time) policy.Vars {
	v := policy.Vars{Sender: me, SenderRole: ledger.Role(g, me), Now: now}
	for _, m := range g.Members {
		v.Members = append(v.Members, m.Handle)
		if m.Role == ledger.RoleOwner || m.Role == ledger.RoleAdmin {
			v.Admins = append(v.Admins, m.Handle)
		}
	}
	return v
}

func (gg *groupGate) checkPost(p *policy.Policy, v policy.Vars, e *tokenimv1.Envelope, key string, now time.Time) error {
	lim, err := p.Limits(v)
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	gg.mu.Lock()
	defer gg.mu.Unlock()
	if gg.recent == nil {
		gg.recent = map[string][]post{}
	}
	this := post{at: now, ct: sha256.Sum256(e.Ciphertext)}
	kept, counted := gg.recent[key][:0], false
	for _, q := range gg.recent[key] {
		if now.Sub(q.at) < lim.RateWindow {
			kept = append(kept, q)
			counted = counted || q.ct == this.ct
		}
	}
	sent := int64(len(kept))
	if counted {
		sent-- // more copies of a message counted already
	}
	v.Action, v.Size, v.SentInWindow = "post", int64(len(e.Ciphertext)), sent
	d, err := p.Decide(v)
	if err == nil && d.Allowed && !counted {
		kept = append(kept, this)
	}
	gg.recent[key] = kept
	if err != nil || !d.Allowed {
		return denied(d, err, "post")
	}
	return nil
}

func denied(d policy.Decision, err error, what string) error {
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%w: %s: rule %s: %s", ledger.ErrDenied, what, d.Rule, d.Reason))
}
