package policy

import (
	"cel.dev/cel-go/cel"
)

// Rule kinds and the CEL type each rule must have.
var ruleTypes = map[string]*cel.Type{
	"can_post": cel.BoolType, "can_join": cel.BoolType, "can_invite": cel.BoolType,
	"can_remove": cel.BoolType, "can_read": cel.BoolType, "legal_hold": cel.BoolType,
	"retention": cel.DurationType, "rate_window": cel.DurationType,
	"max_size": cel.IntType, "rate": cel.IntType,
	"read_only_after": cel.TimestampType,
}

// ruleOrder lists rules in a fixed order (never iterate ruleTypes).
var ruleOrder = []string{
	"can_post", "can_join", "can_invite", "can_remove", "can_read",
	"retention", "max_size", "rate", "rate_window", "legal_hold", "read_only_after",
}

// Defaults are the rules of the default policy (a group created without
// one): owners and admins manage membership, members post, everyone in the
// group reads, 30-day retention, 64 KiB messages, 60 messages a minute.
const Defaults = `# TokenIM default policy
can_post = sender_role in ["owner", "admin", "member"]
can_join = sender_role in ["owner", "admin"]
can_invite = sender_role in ["owner", "admin"]
can_remove = sender_role in ["owner", "admin"] && target_role != "owner" || sender == target
can_read = target_role in ["owner", "admin", "member", "reader"]
retention = duration("720h")
max_size = 65536
rate = 60
rate_window = duration("1m")
legal_hold = false
`
