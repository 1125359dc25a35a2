package ledger

import (
	"errors"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// groupBench registers handles and returns a function that signs and
// delivers one group-module (or policy) message as signer.
func groupBench(t *testing.T, handles ...string) (KV, func(signer string, msg any) error) {
	t.Helper()
	m := NewMachine()
	kv := newState(t, 0)
	users := map[string]*testUser{}
	seq := map[string]uint64{}
	for _, h := range handles {
		u := newUser(t, h)
		users[h] = u
		if _, err := m.Deliver(kv, testBlock, sign(t, u.registerBody(t, 0), u.key)); err != nil {
			t.Fatal(err)
		}
		seq[h] = 1
	}
	do := func(signer string, msg any) error {
		body := &tokenimv1.TxBody{ChainId: testChain, Signer: signer, Sequence: seq[signer]}
		switch x := msg.(type) {
		case *tokenimv1.CreateGroup:
			body.Msg = &tokenimv1.TxBody_CreateGroup{CreateGroup: x}
		case *tokenimv1.GroupAddMember:
			body.Msg = &tokenimv1.TxBody_GroupAddMember{GroupAddMember: x}
		case *tokenimv1.GroupRemoveMember:
			body.Msg = &tokenimv1.TxBody_GroupRemoveMember{GroupRemoveMember: x}
		case *tokenimv1.GroupLeave:
			body.Msg = &tokenimv1.TxBody_GroupLeave{GroupLeave: x}
		case *tokenimv1.GroupSetRole:
			body.Msg = &tokenimv1.TxBody_GroupSetRole{GroupSetRole: x}
		case *tokenimv1.GroupSetPolicy:
			body.Msg = &tokenimv1.TxBody_GroupSetPolicy{GroupSetPolicy: x}
		case *tokenimv1.DeployPolicy:
			body.Msg = &tokenimv1.TxBody_DeployPolicy{DeployPolicy: x}
		}
		_, err := m.Deliver(kv, testBlock, sign(t, body, users[signer].key))
		if err == nil {
			seq[signer]++
		}
		return err
	}
	return kv, do
}

// groupStep is one transaction of a table test and the error it gets.
type groupStep struct {
	name   string
	signer string
	msg    any
	want   error
}

func runGroupSteps(t *testing.T, do func(string, any) error, steps []groupStep) {
	t.Helper()
	for _, s := range steps {
		if err := do(s.signer, s.msg); !errors.Is(err, s.want) {
			t.Fatalf("%s: got %v, want %v", s.name, err, s.want)
		}
	}
}

func TestGroupsUnderTheDefaultPolicy(t *testing.T) {
	kv, do := groupBench(t, "olga", "pete", "quin", "rita")
	steps := []groupStep{
		{"create", "olga", &tokenimv1.CreateGroup{Name: "team", Members: []string{"pete"}}, nil},
		{"create again", "pete", &tokenimv1.CreateGroup{Name: "team"}, ErrGroupExists},
		{"unknown member", "olga", &tokenimv1.CreateGroup{Name: "team2", Members: []string{"nobody"}}, ErrUnknownAccount},
		{"unknown policy", "olga", &tokenimv1.CreateGroup{Name: "team3", Policy: "nope"}, ErrUnknownPolicy},
		{"member cannot invite", "pete", &tokenimv1.GroupAddMember{Group: "team", Member: "quin"}, ErrDenied},
		{"owner invites", "olga", &tokenimv1.GroupAddMember{Group: "team", Member: "quin"}, nil},
		{"twice", "olga", &tokenimv1.GroupAddMember{Group: "team", Member: "quin"}, ErrInvalidGroup},
		{"member cannot remove", "pete", &tokenimv1.GroupRemoveMember{Group: "team", Member: "quin"}, ErrDenied},
		{"owner makes pete admin", "olga", &tokenimv1.GroupSetRole{Group: "team", Member: "pete", Role: "admin"}, nil},
		{"admin cannot make owners", "pete", &tokenimv1.GroupSetRole{Group: "team", Member: "quin", Role: "owner"}, ErrDenied},
		{"admin removes quin", "pete", &tokenimv1.GroupRemoveMember{Group: "team", Member: "quin"}, nil},
		{"admin cannot remove the owner", "pete", &tokenimv1.GroupRemoveMember{Group: "team", Member: "olga"}, ErrDenied},
		{"outsider cannot invite", "rita", &tokenimv1.GroupAddMember{Group: "team", Member: "rita"}, ErrDenied},
		{"last owner cannot leave", "olga", &tokenimv1.GroupLeave{Group: "team"}, ErrInvalidGroup},
		{"admin leaves", "pete", &tokenimv1.GroupLeave{Group: "team"}, nil},
		{"unknown group", "olga", &tokenimv1.GroupLeave{Group: "nope"}, ErrUnknownGroup},
		// Adding oneself is a join, which can_join decides: the default
		// policy lets nobody join by themselves; an open one lets anyone,
		// as a member or a reader.
		{"outsider cannot join", "quin", &tokenimv1.GroupAddMember{Group: "team", Member: "quin"}, ErrDenied},
		{"deploy an open policy", "olga", &tokenimv1.DeployPolicy{Name: "open", Source: "can_join = true"}, nil},
		{"create an open group", "olga", &tokenimv1.CreateGroup{Name: "club", Policy: "open"}, nil},
		{"quin joins", "quin", &tokenimv1.GroupAddMember{Group: "club", Member: "quin"}, nil},
		{"quin joins again", "quin", &tokenimv1.GroupAddMember{Group: "club", Member: "quin"}, ErrInvalidGroup},
		{"rita cannot join as admin", "rita", &tokenimv1.GroupAddMember{Group: "club", Member: "rita", Role: "admin"}, ErrDenied},
		{"rita joins as a reader", "rita", &tokenimv1.GroupAddMember{Group: "club", Member: "rita", Role: "reader"}, nil},
		{"a joiner cannot invite under it", "quin", &tokenimv1.GroupAddMember{Group: "club", Member: "pete"}, ErrDenied},
	}
	runGroupSteps(t, do, steps)
	g, err := GetGroup(kv, "team")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Members) != 1 || Role(g, "olga") != RoleOwner || g.Epoch != 2 {
		t.Fatalf("final group: %v", g)
	}
	// Both epochs closed in block 7: their final lists are in state 6.
	if len(g.ClosedAt) != 2 || g.ClosedAt[0] != testBlock.Height || g.ClosedAt[1] != testBlock.Height {
		t.Fatalf("closed at %v", g.ClosedAt)
	}
	if h, ok := EpochHeight(g, 1); !ok || h != testBlock.Height-1 {
		t.Fatalf("epoch 1 height %d %v", h, ok)
	}
	if _, ok := EpochHeight(g, 2); ok {
		t.Fatal("the open epoch has a closing height")
	}
	if _, ok := EpochHeight(&tokenimv1.GroupRecord{Epoch: 2, ClosedAt: []int64{5}}, 0); ok {
		t.Fatal("a record missing a closing height gives one")
	}
	club, err := GetGroup(kv, "club")
	if err != nil || Role(club, "quin") != RoleMember || Role(club, "rita") != RoleReader || len(club.Members) != 3 {
		t.Fatalf("club: %v %v", club, err)
	}
	for h, want := range map[string]int{"olga": 2, "pete": 0, "quin": 1, "rita": 1} {
		if gs, err := GroupsOf(kv, h); err != nil || len(gs) != want {
			t.Fatalf("groups of %s: %v %v", h, gs, err)
		}
	}
}

// Only an owner replaces a group's policy; the epoch closes (sender keys
// rotate); a group under legal hold keeps a policy that holds.
func TestGroupSetPolicy(t *testing.T) {
	kv, do := groupBench(t, "olga", "pete", "quin")
	steps := []groupStep{
		{"create", "olga", &tokenimv1.CreateGroup{Name: "team", Members: []string{"pete", "quin"}}, nil},
		{"make pete admin", "olga", &tokenimv1.GroupSetRole{Group: "team", Member: "pete", Role: "admin"}, nil},
		{"deploy a day", "olga", &tokenimv1.DeployPolicy{Name: "day", Source: `retention = duration("24h")`}, nil},
		{"deploy a hold", "olga", &tokenimv1.DeployPolicy{Name: "hold", Source: "legal_hold = true"}, nil},
		{"deploy another hold", "olga", &tokenimv1.DeployPolicy{Name: "hold-week", Source: "legal_hold = true\nretention = duration(\"168h\")"}, nil},
		{"a member cannot", "quin", &tokenimv1.GroupSetPolicy{Group: "team", Policy: "day"}, ErrDenied},
		{"an admin cannot", "pete", &tokenimv1.GroupSetPolicy{Group: "team", Policy: "day"}, ErrDenied},
		{"unknown policy", "olga", &tokenimv1.GroupSetPolicy{Group: "team", Policy: "nope"}, ErrUnknownPolicy},
		{"unknown group", "olga", &tokenimv1.GroupSetPolicy{Group: "nope", Policy: "day"}, ErrUnknownGroup},
		{"already the default", "olga", &tokenimv1.GroupSetPolicy{Group: "team"}, ErrInvalidGroup},
		{"the owner sets a day", "olga", &tokenimv1.GroupSetPolicy{Group: "team", Policy: "day"}, nil},
		{"the owner puts it on hold", "olga", &tokenimv1.GroupSetPolicy{Group: "team", Policy: "hold"}, nil},
		{"held: not back to a day", "olga", &tokenimv1.GroupSetPolicy{Group: "team", Policy: "day"}, ErrDenied},
		{"held: not back to the default", "olga", &tokenimv1.GroupSetPolicy{Group: "team", Policy: ""}, ErrDenied},
		{"held: another hold", "olga", &tokenimv1.GroupSetPolicy{Group: "team", Policy: "hold-week"}, nil},
	}
	runGroupSteps(t, do, steps)
	g, err := GetGroup(kv, "team")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := GetPolicy(kv, "hold-week")
	if err != nil {
		t.Fatal(err)
	}
	if g.PolicyId != rec.Id || g.Epoch != 3 || len(g.ClosedAt) != 3 || len(g.Members) != 3 {
		t.Fatalf("after three policy changes: policy %s epoch %d closed %v members %d", g.PolicyId[:12], g.Epoch, g.ClosedAt, len(g.Members))
	}
}
