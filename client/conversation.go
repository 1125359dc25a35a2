package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/policy"
)

// AttachPolicy attaches a deployed policy (name or id; "" detaches) to the
// 1:1 conversation with peer — e.g. disappearing messages. Either party may
// set it; it applies both ways. Once it is on chain, peer is told with a
// notice in the conversation (PolicyNotice), which both histories show.
func (c *Client) AttachPolicy(ctx context.Context, peer, policyName string) error {
	h, err := ledger.NormalizeHandle(peer)
	if err != nil {
		return err
	}
	id := ""
	if policyName != "" {
		rec, err := GetPolicy(ctx, c.cfg, policyName)
		if err != nil {
			return err
		}
		id = rec.Id
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
	if _, err := c.broadcast(ctx, body); err != nil {
		return err
	}
	text, err := c.policyNoticeText(ctx, h, nil, id, false)
	if err != nil {
		return fmt.Errorf("the policy is attached; telling @%s: %w", h, err)
	}
	notice := &tokenimv1.Content{Body: &tokenimv1.Content_PolicyNotice{PolicyNotice: &tokenimv1.PolicyNotice{PolicyId: id}}}
	if _, err := c.sendContent(ctx, h, notice, text); err != nil && !errors.Is(err, ErrQueued) {
		return fmt.Errorf("the policy is attached; telling @%s: %w", h, err)
	}
	return nil
}

// policyNoticeText says what attaching policy id to the conversation
// with peer (or, "", detaching it) or making it group g's policy does,
// from the policy on chain; received (the notice came from the other
// side) adds whether it is still the one in force.
func (c *Client) policyNoticeText(ctx context.Context, peer string, g *tokenimv1.GroupRecord, id string, received bool) (string, error) {
	text := "turned disappearing messages off (the conversation has no policy)"
	if id != "" {
		p, err := c.policyByID(ctx, id)
		if err != nil {
			return "", err
		}
		v := ledger.ConversationVars(c.Handle(), peer, time.Now())
		if g != nil {
			v = ledger.GroupVars(g, c.Handle(), time.Now())
		}
		d, err := disappearingOf(p, v)
		if err != nil {
			return "", err
		}
		switch {
		case g != nil && d.LegalHold:
			text = "changed the group's policy to " + id[:12] + ": messages are kept (legal hold)"
		case g != nil && d.After > 0:
			text = "changed the group's policy to " + id[:12] + ": messages disappear after " + Span(d.After)
		case g != nil:
			text = "changed the group's policy to " + id[:12] + ": messages kept until read"
		case d.LegalHold:
			text = "put the conversation under legal hold (policy " + id[:12] + "): messages are kept"
		case d.After > 0:
			text = "set disappearing messages to " + Span(d.After)
		default:
			text = "attached policy " + id[:12] + " to the conversation (messages kept until read)"
		}
	}
	if received {
		current := ""
		if g != nil {
			current = g.PolicyId
		} else {
			cur, err := c.DirectDisappearing(ctx, peer)
			if err != nil {
				return "", err
			}
			current = cur.PolicyID
		}
		if current != id {
			text += " (since changed)"
		}
	}
	return text, nil
}

// Span names a duration as people say it: "5 minutes", "1 day", "30 days".
func Span(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{365 * 24 * time.Hour, "year"}, {7 * 24 * time.Hour, "week"}, {24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		if d >= u.d && d%u.d == 0 {
			if n := d / u.d; n != 1 {
				return fmt.Sprintf("%d %ss", n, u.name)
			}
			return "1 " + u.name
		}
	}
	return d.String()
}

// directExpiry is when the conversation's policy deletes a message sent
// to peer now (zero: kept), as the nodes compute it.
func (c *Client) directExpiry(ctx context.Context, peer string, now time.Time) (time.Time, error) {
	res, err := c.node.GetConversationPolicy(ctx, connect.NewRequest(&tokenimv1.GetConversationPolicyRequest{A: c.Handle(), B: peer}))
	if err != nil || res.Msg.Policy == nil {
		return time.Time{}, err
	}
	p, err := compiled(res.Msg.Policy.Source)
	if err != nil {
		return time.Time{}, err
	}
	lim, err := p.Limits(ledger.ConversationVars(c.Handle(), peer, now)) // as the nodes compute it
	if err != nil || lim.LegalHold || lim.Retention <= 0 {
		return time.Time{}, err
	}
	return now.Add(lim.Retention).UTC(), nil
}

// Disappearing is what a conversation's policy does with its messages, as
// of now: delete them After a time, on every node that stores them and in
// every member's client, or keep them (After 0: kept until read and
// acknowledged on the nodes, kept in the clients; LegalHold: kept
// whatever the retention says).
type Disappearing struct {
	PolicyID  string        // the policy in force ("" for a 1:1 conversation without one)
	After     time.Duration // 0: not deleted by time
	LegalHold bool
}

// DirectDisappearing reads what the 1:1 conversation with peer keeps: its
// policy, as the nodes apply it now.
func (c *Client) DirectDisappearing(ctx context.Context, peer string) (Disappearing, error) {
	h, err := ledger.NormalizeHandle(peer)
	if err != nil {
		return Disappearing{}, err
	}
	res, err := call(ctx, c, "conversation policy", &tokenimv1.GetConversationPolicyRequest{A: c.Handle(), B: h}, c.node.GetConversationPolicy)
	if err != nil || res.Policy == nil {
		return Disappearing{}, err
	}
	p, err := compiled(res.Policy.Source)
	if err != nil {
		return Disappearing{}, err
	}
	return disappearingOf(p, ledger.ConversationVars(c.Handle(), h, time.Now()))
}

// GroupDisappearing reads what group g's policy keeps, as the nodes apply
// it now to this account's posts.
func (c *Client) GroupDisappearing(ctx context.Context, g *tokenimv1.GroupRecord) (Disappearing, error) {
	p, err := c.groupPolicy(ctx, g)
	if err != nil {
		return Disappearing{}, err
	}
	return disappearingOf(p, ledger.GroupVars(g, c.Handle(), time.Now()))
}

func disappearingOf(p *policy.Policy, v policy.Vars) (Disappearing, error) {
	lim, err := p.Limits(v)
	if err != nil {
		return Disappearing{}, err
	}
	d := Disappearing{PolicyID: p.ID(), LegalHold: lim.LegalHold}
	if !lim.LegalHold && lim.Retention > 0 {
		d.After = lim.Retention
	}
	return d, nil
}

// SetDisappearing makes the messages of the 1:1 conversation with peer
// disappear after d — from the nodes and from both clients — or, with d 0,
// stay (it detaches the conversation's policy). Either party may set it;
// it applies both ways, to messages sent from then on. The policy
// (`retention = duration("…s")`) is deployed first if no one has.
func (c *Client) SetDisappearing(ctx context.Context, peer string, d time.Duration) error {
	if d == 0 {
		return c.AttachPolicy(ctx, peer, "")
	}
	if d < time.Second || d%time.Second != 0 {
		return fmt.Errorf("disappearing messages: %v: give whole seconds, at least one", d)
	}
	id, err := c.EnsurePolicy(ctx, "disappear", fmt.Sprintf("retention = duration(%q)\n", fmt.Sprintf("%ds", int64(d/time.Second))))
	if err != nil {
		return err
	}
	return c.AttachPolicy(ctx, peer, id)
}

// EnsurePolicy returns the id of a policy with source, deploying it (under
// prefix and the start of its id) if no one has deployed that source yet.
func (c *Client) EnsurePolicy(ctx context.Context, prefix, source string) (string, error) {
	id := policy.ID(source)
	if rec, err := GetPolicy(ctx, c.cfg, id); err == nil {
		return rec.Id, nil
	} else if !errors.Is(err, ErrUnknownPolicy) {
		return "", err
	}
	if len(prefix) > 23 { // names are 3–32 characters
		prefix = prefix[:23]
	}
	if prefix == "" {
		prefix = "policy"
	}
	if _, err := c.DeployPolicy(ctx, prefix+"-"+id[:8], source); err != nil && !errors.Is(err, ErrPolicyExists) {
		return "", err
	}
	return id, nil
}

// Rights is what a group's policy lets this account do now, and the
// limits it sets, evaluated here as the nodes evaluate them (for add and
// remove: of a plain member).
type Rights struct {
	PolicyID, Source     string // the policy and its CEL text
	Post, Invite, Remove bool
	PostRule, PostReason string // the rule that refuses a post, and why
	MaxSize, Rate        int64
	RateWindow           time.Duration
	ReadOnlyAfter        time.Time // zero: no such rule
	Disappearing         Disappearing
}

// GroupRights evaluates g's policy for this account now.
func (c *Client) GroupRights(ctx context.Context, g *tokenimv1.GroupRecord) (Rights, error) {
	p, err := c.policyByID(ctx, g.PolicyId)
	if err != nil {
		return Rights{}, err
	}
	v := ledger.GroupVars(g, c.Handle(), time.Now())
	r := Rights{PolicyID: p.ID(), Source: p.Source()}
	if r.Disappearing, err = disappearingOf(p, v); err != nil {
		return Rights{}, err
	}
	lim, err := p.Limits(v)
	if err != nil {
		return Rights{}, err
	}
	r.RateWindow, r.ReadOnlyAfter = lim.RateWindow, lim.ReadOnlyAfter
	if r.MaxSize, r.Rate, err = p.Numbers(v); err != nil {
		return Rights{}, err
	}
	for _, a := range []struct {
		action string
		to     *bool
	}{{"post", &r.Post}, {"invite", &r.Invite}, {"remove", &r.Remove}} {
		va := v
		va.Action = a.action
		if a.action != "post" {
			va.Target, va.TargetRole = "", ledger.RoleMember
		}
		d, err := p.Decide(va)
		if err != nil {
			return Rights{}, err
		}
		*a.to = d.Allowed
		if a.action == "post" && !d.Allowed {
			r.PostRule, r.PostReason = d.Rule, d.Reason
		}
	}
	return r, nil
}
