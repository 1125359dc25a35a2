package policy

import (
	"fmt"
	"time"

	"cel.dev/cel-go/cel"
)

// varTypes are the inputs a rule may use.
var varTypes = map[string]*cel.Type{
	"action":         cel.StringType, // post, join, invite, remove, read
	"sender":         cel.StringType, // the acting account's handle
	"sender_role":    cel.StringType, // owner, admin, member, reader, or "" (not a member)
	"target":         cel.StringType, // the account acted on (join/invite/remove/read), else ""
	"target_role":    cel.StringType,
	"members":        cel.ListType(cel.StringType), // handles, sorted
	"admins":         cel.ListType(cel.StringType), // owners and admins, sorted
	"size":           cel.IntType,                  // envelope bytes (post)
	"sent_in_window": cel.IntType,                  // sender's posts in the rate window so far
	"now":            cel.TimestampType,            // block time, never a clock
}

var varOrder = []string{"action", "sender", "sender_role", "target", "target_role", "members", "admins", "size", "sent_in_window", "now"}

var env = func() *cel.Env {
	opts := make([]cel.EnvOption, 0, len(varOrder))
	for _, name := range varOrder {
		opts = append(opts, cel.Variable(name, varTypes[name]))
	}
	e, err := cel.NewEnv(opts...)
	if err != nil {
		panic(fmt.Sprintf("policy: CEL environment: %v", err))
	}
	return e
}()

// Vars are the inputs of one evaluation.
type Vars struct {
	Action       string
	Sender       string
	SenderRole   string
	Target       string
	TargetRole   string
	Members      []string
	Admins       []string
	Size         int64
	SentInWindow int64
	Now          time.Time
}

// activation turns Vars into CEL inputs (lists, scalars: no maps).
func (v *Vars) activation() (map[string]any, error) {
	if len(v.Members) > MaxListLen || len(v.Admins) > MaxListLen {
		return nil, fmt.Errorf("%w: more than %d members", ErrEval, MaxListLen)
	}
	members, admins := v.Members, v.Admins
	if members == nil {
		members = []string{}
	}
	if admins == nil {
		admins = []string{}
	}
	return map[string]any{
		"action": v.Action, "sender": v.Sender, "sender_role": v.SenderRole,
		"target": v.Target, "target_role": v.TargetRole,
		"members": members, "admins": admins, "size": v.Size,
		"sent_in_window": v.SentInWindow, "now": v.Now.UTC(),
	}, nil
}
