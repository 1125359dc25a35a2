package policy

import (
	"fmt"
	"time"

	"cel.dev/cel-go/common/types"
)

// Decision is the answer to "may this happen?".
type Decision struct {
	Allowed bool
	// Rule is the rule that decided (e.g. "can_post", "max_size").
	Rule string
	// Reason says why, for the user.
	Reason string
	// Cost is the CEL cost spent.
	Cost uint64
}

var actionRule = map[string]string{
	"post": "can_post", "join": "can_join", "invite": "can_invite", "remove": "can_remove", "read": "can_read",
}

// Decide evaluates v.Action (post, join, invite, remove, read). A post is
// also checked against read_only_after, max_size and rate.
func (p *Policy) Decide(v Vars) (Decision, error) {
	rule, ok := actionRule[v.Action]
	if !ok {
		return Decision{}, fmt.Errorf("%w: unknown action %q", ErrEval, v.Action)
	}
	var spent uint64
	if v.Action == "post" {
		if d, err := p.postLimits(v, &spent); err != nil || !d.Allowed {
			return d, err
		}
	}
	val, c, err := p.eval(rule, v)
	spent += c
	if err != nil {
		return Decision{}, err
	}
	if val.(bool) {
		return Decision{Allowed: true, Rule: rule, Cost: spent}, nil
	}
	return Decision{Rule: rule, Reason: fmt.Sprintf("%s is false: %s", rule, p.text[rule]), Cost: spent}, nil
}

func (p *Policy) postLimits(v Vars, spent *uint64) (Decision, error) {
	if _, ok := p.rules["read_only_after"]; ok {
		t, c, err := p.eval("read_only_after", v)
		*spent += c
		if err != nil {
			return Decision{}, err
		}
		if until := t.(time.Time); !v.Now.Before(until) {
			return Decision{Rule: "read_only_after", Reason: "the conversation is read-only since " + until.UTC().Format(time.RFC3339), Cost: *spent}, nil
		}
	}
	maxSize, c, err := p.eval("max_size", v)
	*spent += c
	if err != nil {
		return Decision{}, err
	}
	if v.Size > maxSize.(int64) {
		return Decision{Rule: "max_size", Reason: fmt.Sprintf("%d bytes, the limit is %d", v.Size, maxSize), Cost: *spent}, nil
	}
	rate, c, err := p.eval("rate", v)
	*spent += c
	if err != nil {
		return Decision{}, err
	}
	if v.SentInWindow >= rate.(int64) {
		return Decision{Rule: "rate", Reason: fmt.Sprintf("at most %d messages per window", rate), Cost: *spent}, nil
	}
	return Decision{Allowed: true, Cost: *spent}, nil
}

// Limits are a conversation's non-decision rules.
type Limits struct {
	Retention  time.Duration
	RateWindow time.Duration
	LegalHold  bool
	// ReadOnlyAfter is zero when the rule is absent.
	ReadOnlyAfter time.Time
}

// Limits evaluates retention, rate_window, legal_hold and read_only_after.
func (p *Policy) Limits(v Vars) (Limits, error) {
	var l Limits
	r, _, err := p.eval("retention", v)
	if err != nil {
		return l, err
	}
	w, _, err := p.eval("rate_window", v)
	if err != nil {
		return l, err
	}
	h, _, err := p.eval("legal_hold", v)
	if err != nil {
		return l, err
	}
	l.Retention, l.RateWindow, l.LegalHold = r.(time.Duration), w.(time.Duration), h.(bool)
	if _, ok := p.rules["read_only_after"]; ok {
		t, _, err := p.eval("read_only_after", v)
		if err != nil {
			return l, err
		}
		l.ReadOnlyAfter = t.(time.Time)
	}
	return l, nil
}

// Numbers evaluates max_size (bytes) and rate (posts per rate_window).
func (p *Policy) Numbers(v Vars) (maxSize, rate int64, err error) {
	m, _, err := p.eval("max_size", v)
	if err != nil {
		return 0, 0, err
	}
	r, _, err := p.eval("rate", v)
	if err != nil {
		return 0, 0, err
	}
	return m.(int64), r.(int64), nil
}

// eval runs one rule and returns its Go value and cost.
func (p *Policy) eval(rule string, v Vars) (any, uint64, error) {
	prg, ok := p.rules[rule]
	if !ok {
		return nil, 0, fmt.Errorf("%w: policy has no rule %s", ErrEval, rule)
	}
	act, err := v.activation()
	if err != nil {
		return nil, 0, err
	}
	out, det, err := prg.Eval(act)
	var spent uint64
	if det != nil && det.ActualCost() != nil {
		spent = *det.ActualCost()
	}
	if err != nil {
		return nil, spent, fmt.Errorf("%w: rule %s: %v", ErrEval, rule, err)
	}
	switch val := out.(type) {
	case types.Bool:
		return bool(val), spent, nil
	case types.Int:
		return int64(val), spent, nil
	case types.Duration:
		return val.Duration, spent, nil
	case types.Timestamp:
		return val.Time, spent, nil
	}
	return nil, spent, fmt.Errorf("%w: rule %s gave %v", ErrEval, rule, out.Type())
}
