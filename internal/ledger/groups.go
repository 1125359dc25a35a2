package ledger

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/policy"
)

// groupsModule owns groups: grp/<name> → GroupRecord.
type groupsModule struct{}

// Group limits.
const (
	MaxGroupMembers   = policy.MaxListLen
	MaxCreateMembers  = 1000 // members named in one CreateGroup (add more later)
	RoleOwner         = "owner"
	RoleAdmin         = "admin"
	RoleMember        = "member"
	RoleReader        = "reader"
	defaultPolicyName = "default"
)

func groupKey(name string) []byte { return []byte("grp/" + name) }

// GroupStateKey is the state key of a group's record (what GetStateProof
// proves for "group/<name>").
func GroupStateKey(name string) []byte { return groupKey(name) }

// CheckGroupName reports whether n is a valid group name.
// It is an ErrInvalidGroup.
func CheckGroupName(n string) error {
	if checkPolicyName(n) != nil { // the same rule as policy names
		return groupNameError(fmt.Sprintf("invalid group name %q: 3-32 characters, only a-z, 0-9, _ and -", n))
	}
	return nil
}

// groupNameError reads as itself and is an ErrInvalidGroup.
type groupNameError string

func (e groupNameError) Error() string { return string(e) }
func (e groupNameError) Unwrap() error { return ErrInvalidGroup }

// EpochHeight returns the height whose state holds epoch's final member
// list (the block before the one that closed it); ok is false while the
// epoch is open, or for an epoch closed before groups recorded it.
func EpochHeight(g *tokenimv1.GroupRecord, epoch uint64) (int64, bool) {
	if epoch >= g.Epoch || epoch >= uint64(len(g.ClosedAt)) || len(g.ClosedAt) != int(g.Epoch) {
		return 0, false
	}
	return g.ClosedAt[epoch] - 1, true
}

func (groupsModule) Name() string { return "groups" }

func (groupsModule) Handles(body *tokenimv1.TxBody) bool {
	switch body.Msg.(type) {
	case *tokenimv1.TxBody_CreateGroup, *tokenimv1.TxBody_GroupAddMember, *tokenimv1.TxBody_GroupRemoveMember,
		*tokenimv1.TxBody_GroupLeave, *tokenimv1.TxBody_GroupSetRole, *tokenimv1.TxBody_GroupSetPolicy:
		return true
	}
	return false
}

func (groupsModule) Authenticate(r Reader, body *tokenimv1.TxBody) (Signer, error) {
	return accountsModule{}.Authenticate(r, body)
}

// Validate and Apply share one path: compute the new record (or an error).
func (groupsModule) Validate(ctx *Context, body *tokenimv1.TxBody) error {
	_, err := nextGroup(ctx, body)
	return err
}

func (groupsModule) Apply(ctx *Context, body *tokenimv1.TxBody) error {
	var before []string
	if old, err := GetGroup(ctx.KV, groupName(body)); err == nil {
		before = handles(old)
	}
	g, err := nextGroup(ctx, body)
	if err != nil {
		return err
	}
	if err := setProto(ctx.KV, groupKey(g.Name), g); err != nil {
		return err
	}
	return indexMembers(ctx.KV, g.Name, before, handles(g))
}

func groupName(body *tokenimv1.TxBody) string {
	switch m := body.Msg.(type) {
	case *tokenimv1.TxBody_CreateGroup:
		return m.CreateGroup.Name
	case *tokenimv1.TxBody_GroupAddMember:
		return m.GroupAddMember.Group
	case *tokenimv1.TxBody_GroupRemoveMember:
		return m.GroupRemoveMember.Group
	case *tokenimv1.TxBody_GroupLeave:
		return m.GroupLeave.Group
	case *tokenimv1.TxBody_GroupSetRole:
		return m.GroupSetRole.Group
	case *tokenimv1.TxBody_GroupSetPolicy:
		return m.GroupSetPolicy.Group
	}
	return ""
}

func handles(g *tokenimv1.GroupRecord) []string {
	out := make([]string, len(g.Members))
	for i, m := range g.Members {
		out[i] = m.Handle
	}
	return out
}

func accountGroupsKey(handle string) []byte { return []byte("ag/" + handle) }

// AccountGroupsStateKey is the state key of the groups an account belongs
// to (what GetStateProof proves for "groups/<handle>").
func AccountGroupsStateKey(handle string) []byte { return accountGroupsKey(handle) }

// indexMembers updates ag/<handle> for members who joined or left.
func indexMembers(kv KV, group string, before, after []string) error {
	for _, h := range after {
		if !slices.Contains(before, h) {
			if err := editAccountGroups(kv, h, func(gs []string) []string {
				if i, found := slices.BinarySearch(gs, group); !found {
					gs = slices.Insert(gs, i, group)
				}
				return gs
			}); err != nil {
				return err
			}
		}
	}
	for _, h := range before {
		if !slices.Contains(after, h) {
			if err := editAccountGroups(kv, h, func(gs []string) []string {
				return slices.DeleteFunc(gs, func(x string) bool { return x == group })
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func editAccountGroups(kv KV, handle string, edit func([]string) []string) error {
	var ag tokenimv1.AccountGroups
	if _, err := getProto(kv, accountGroupsKey(handle), &ag); err != nil {
		return err
	}
	ag.Groups = edit(ag.Groups)
	return setProto(kv, accountGroupsKey(handle), &ag)
}

// GroupsOf lists the groups handle belongs to, sorted.
func GroupsOf(r Reader, handle string) ([]string, error) {
	var ag tokenimv1.AccountGroups
	if _, err := getProto(r, accountGroupsKey(handle), &ag); err != nil {
		return nil, err
	}
	return ag.Groups, nil
}

// GetGroup reads a group; ErrUnknownGroup if none.
func GetGroup(r Reader, name string) (*tokenimv1.GroupRecord, error) {
	var g tokenimv1.GroupRecord
	ok, err := getProto(r, groupKey(name), &g)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownGroup, name)
	}
	return &g, nil
}

// GroupVars are the policy inputs of an action by sender in g at now (the
// caller sets Action, Target and the rest): nodes and clients evaluate a
// group's policy with the same inputs.
func GroupVars(g *tokenimv1.GroupRecord, sender string, now time.Time) policy.Vars {
	v := policy.Vars{Sender: sender, SenderRole: Role(g, sender), Now: now}
	for _, m := range g.Members {
		v.Members = append(v.Members, m.Handle)
		if m.Role == RoleOwner || m.Role == RoleAdmin {
			v.Admins = append(v.Admins, m.Handle)
		}
	}
	return v
}

// ConversationVars are the policy inputs of sender's action in its 1:1
// conversation with peer: both are members.
func ConversationVars(sender, peer string, now time.Time) policy.Vars {
	members := []string{sender, peer}
	slices.Sort(members)
	return policy.Vars{Sender: sender, SenderRole: RoleMember, Target: peer, TargetRole: RoleMember, Members: members, Now: now}
}

// Role returns handle's role in g ("" if not a member).
func Role(g *tokenimv1.GroupRecord, handle string) string {
	i, ok := slices.BinarySearchFunc(g.Members, handle, func(m *tokenimv1.GroupMember, h string) int { return strings.Compare(m.Handle, h) })
	if !ok {
		return ""
	}
	return g.Members[i].Role
}

func nextGroup(ctx *Context, body *tokenimv1.TxBody) (*tokenimv1.GroupRecord, error) {
	me := body.Signer
	switch m := body.Msg.(type) {
	case *tokenimv1.TxBody_CreateGroup:
		return createGroup(ctx, me, m.CreateGroup)
	case *tokenimv1.TxBody_GroupAddMember:
		action := "invite"
		if m.GroupAddMember.Member == me {
			action = "join" // adding oneself: the policy's can_join decides
		}
		return changeGroup(ctx, m.GroupAddMember.Group, me, action, m.GroupAddMember.Member, orMember(m.GroupAddMember.Role))
	case *tokenimv1.TxBody_GroupRemoveMember:
		return changeGroup(ctx, m.GroupRemoveMember.Group, me, "remove", m.GroupRemoveMember.Member, "")
	case *tokenimv1.TxBody_GroupLeave:
		return changeGroup(ctx, m.GroupLeave.Group, me, "leave", me, "")
	case *tokenimv1.TxBody_GroupSetRole:
		return changeGroup(ctx, m.GroupSetRole.Group, me, "set_role", m.GroupSetRole.Member, m.GroupSetRole.Role)
	case *tokenimv1.TxBody_GroupSetPolicy:
		return setGroupPolicy(ctx, m.GroupSetPolicy.Group, me, m.GroupSetPolicy.Policy)
	}
	return nil, ErrUnknownMessage
}

func orMember(role string) string {
	if role == "" {
		return RoleMember
	}
	return role
}

func validRole(r string) bool {
	return r == RoleOwner || r == RoleAdmin || r == RoleMember || r == RoleReader
}

func createGroup(ctx *Context, me string, c *tokenimv1.CreateGroup) (*tokenimv1.GroupRecord, error) {
	if err := CheckGroupName(c.Name); err != nil {
		return nil, err
	}
	if v, err := ctx.KV.Get(groupKey(c.Name)); err != nil || v != nil {
		return nil, fmt.Errorf("%w: %q", ErrGroupExists, c.Name)
	}
	if len(c.Members) > MaxCreateMembers {
		return nil, fmt.Errorf("%w: %d members at creation (cap %d)", ErrInvalidGroup, len(c.Members), MaxCreateMembers)
	}
	pid, err := resolvePolicy(ctx.KV, c.Policy)
	if err != nil {
		return nil, err
	}
	g := &tokenimv1.GroupRecord{Name: c.Name, PolicyId: pid, CreatedHeight: ctx.Height,
		Members: []*tokenimv1.GroupMember{{Handle: me, Role: RoleOwner}}}
	for _, h := range c.Members {
		if err := addMember(ctx.KV, g, h, RoleMember); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// resolvePolicy maps a policy name or id ("" = default) to a deployed id.
func resolvePolicy(r Reader, nameOrID string) (string, error) {
	if nameOrID == "" || nameOrID == defaultPolicyName {
		return policy.ID(policy.Defaults), nil
	}
	rec, err := GetPolicy(r, nameOrID)
	if err != nil {
		return "", err
	}
	return rec.Id, nil
}

func addMember(r Reader, g *tokenimv1.GroupRecord, handle, role string) error {
	if _, err := GetAccount(r, handle); err != nil {
		return err
	}
	if !validRole(role) {
		return fmt.Errorf("%w: role %q", ErrInvalidGroup, role)
	}
	i, found := slices.BinarySearchFunc(g.Members, handle, func(m *tokenimv1.GroupMember, h string) int { return strings.Compare(m.Handle, h) })
	if found {
		return fmt.Errorf("%w: @%s is already a member", ErrInvalidGroup, handle)
	}
	if len(g.Members) >= MaxGroupMembers {
		return fmt.Errorf("%w: group is full (%d members)", ErrInvalidGroup, MaxGroupMembers)
	}
	g.Members = slices.Insert(g.Members, i, &tokenimv1.GroupMember{Handle: handle, Role: role})
	return nil
}

func changeGroup(ctx *Context, name, me, action, target, role string) (*tokenimv1.GroupRecord, error) {
	g, err := GetGroup(ctx.KV, name)
	if err != nil {
		return nil, err
	}
	if err := authorize(ctx, g, me, action, target, role); err != nil {
		return nil, err
	}
	switch action {
	case "invite":
		return g, addMember(ctx.KV, g, target, role)
	case "join":
		if role != RoleMember && role != RoleReader {
			return nil, fmt.Errorf("%w: one joins as a member or a reader, not as %s (an owner or admin grants more)", ErrDenied, role)
		}
		return g, addMember(ctx.KV, g, target, role)
	case "remove", "leave":
		if Role(g, target) == "" {
			return nil, fmt.Errorf("%w: @%s is not a member", ErrInvalidGroup, target)
		}
		g.Members = slices.DeleteFunc(g.Members, func(m *tokenimv1.GroupMember) bool { return m.Handle == target })
		g.ClosedAt = append(g.ClosedAt, ctx.Height) // closes epoch g.Epoch
		g.Epoch++
	case "set_role":
		if !validRole(role) || Role(g, target) == "" {
			return nil, fmt.Errorf("%w: @%s as %q", ErrInvalidGroup, target, role)
		}
		for _, m := range g.Members {
			if m.Handle == target {
				m.Role = role
			}
		}
	}
	if !slices.ContainsFunc(g.Members, func(m *tokenimv1.GroupMember) bool { return m.Role == RoleOwner }) {
		return nil, fmt.Errorf("%w: a group keeps at least one owner", ErrInvalidGroup)
	}
	return g, nil
}

// setGroupPolicy replaces g's policy: an owner's act; under legal hold
// only by a policy that keeps it; the epoch closes (sender keys rotate).
func setGroupPolicy(ctx *Context, name, me, nameOrID string) (*tokenimv1.GroupRecord, error) {
	g, err := GetGroup(ctx.KV, name)
	if err != nil {
		return nil, err
	}
	if Role(g, me) != RoleOwner {
		return nil, fmt.Errorf("%w: only an owner changes a group's policy", ErrDenied)
	}
	pid, err := resolvePolicy(ctx.KV, nameOrID)
	if err != nil {
		return nil, err
	}
	if pid == g.PolicyId {
		return nil, fmt.Errorf("%w: %s is already the group's policy", ErrInvalidGroup, pid[:12])
	}
	now := time.UnixMilli(ctx.TimeMs).UTC()
	held, err := legalHold(ctx.KV, g, g.PolicyId, me, now)
	if err != nil {
		return nil, err
	}
	if held {
		if keeps, err := legalHold(ctx.KV, g, pid, me, now); err != nil {
			return nil, err
		} else if !keeps {
			return nil, fmt.Errorf("%w: the group is under legal hold: its policy can only be replaced by one that keeps the hold", ErrDenied)
		}
	}
	g.PolicyId = pid
	g.ClosedAt = append(g.ClosedAt, ctx.Height) // closes epoch g.Epoch
	g.Epoch++
	return g, nil
}

// legalHold evaluates policy id's legal_hold for g at now.
func legalHold(r Reader, g *tokenimv1.GroupRecord, id, me string, now time.Time) (bool, error) {
	p, err := compiledPolicy(r, id)
	if err != nil {
		return false, err
	}
	lim, err := p.Limits(GroupVars(g, me, now))
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrDenied, err)
	}
	return lim.LegalHold, nil
}

// authorize asks the group's policy (leave is always allowed; adding
// oneself is a join, which can_join decides; only owners grant or take the
// owner role).
func authorize(ctx *Context, g *tokenimv1.GroupRecord, me, action, target, role string) error {
	if action == "leave" {
		return nil
	}
	if action == "join" && Role(g, me) != "" {
		return fmt.Errorf("%w: @%s is already a member", ErrInvalidGroup, me)
	}
	if action == "set_role" && (role == RoleOwner || Role(g, target) == RoleOwner) && Role(g, me) != RoleOwner {
		return fmt.Errorf("%w: only an owner grants or takes the owner role", ErrDenied)
	}
	p, err := compiledPolicy(ctx.KV, g.PolicyId)
	if err != nil {
		return err
	}
	v := policy.Vars{Action: action, Sender: me, SenderRole: Role(g, me), Target: target, TargetRole: Role(g, target),
		Now: time.UnixMilli(ctx.TimeMs).UTC()}
	if action == "set_role" {
		v.Action = "invite"
	}
	for _, m := range g.Members {
		v.Members = append(v.Members, m.Handle)
		if m.Role == RoleOwner || m.Role == RoleAdmin {
			v.Admins = append(v.Admins, m.Handle)
		}
	}
	d, err := p.Decide(v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDenied, err)
	}
	if !d.Allowed {
		return fmt.Errorf("%w: %s", ErrDenied, d.Reason)
	}
	return nil
}

// compiled caches policies by id (compilation is deterministic; the cache
// only saves time).
var compiled sync.Map

func compiledPolicy(r Reader, id string) (*policy.Policy, error) {
	if p, ok := compiled.Load(id); ok {
		return p.(*policy.Policy), nil
	}
	src := policy.Defaults
	if id != policy.ID(policy.Defaults) {
		rec, err := GetPolicy(r, id)
		if err != nil {
			return nil, err
		}
		src = rec.Source
	}
	p, err := policy.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	compiled.Store(id, p)
	return p, nil
}

// PolicyOf returns a group's compiled policy.
func PolicyOf(r Reader, g *tokenimv1.GroupRecord) (*policy.Policy, error) {
	return compiledPolicy(r, g.PolicyId)
}
