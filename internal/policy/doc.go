// Package policy is TokenIM's smart-contract language: conversation rules
// written in CEL (cel.dev/cel-go, version pinned: consensus depends on it)
// and evaluated identically on every node.
//
// A policy is source text: one rule per line, `name = CEL expression`,
// `#` starts a comment. Its id is the SHA-256 of the text. Rules (all
// optional; Defaults fills the missing ones):
//
//	can_post, can_join, can_invite, can_remove, can_read   bool
//	retention, rate_window                                  duration
//	max_size, rate                                          int
//	legal_hold                                              bool
//	read_only_after                                         timestamp
//
// Inputs are scalars and lists of strings only (no maps: CEL's cost over
// maps is not deterministic), and the time is the block time (`now`),
// never a clock: see Vars. Compile checks every rule at deploy: it must
// parse, refer only to declared inputs, have its rule's type, and stay
// under MaxStaticCost; evaluation is also stopped at MaxActualCost.
//
// Entry points: Compile (deploy), Policy.Decide (post/join/invite/remove/
// read decisions with the rule and reason), Policy.Limits (retention, size,
// rate, legal hold, read-only date).
package policy
