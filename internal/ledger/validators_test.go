package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

func (n *testNode) propose(t testing.TB, seq uint64, key []byte, power int64) []byte {
	b := n.body(seq)
	b.Msg = &tokenimv1.TxBody_ProposeValidator{ProposeValidator: &tokenimv1.ProposeValidator{ValidatorKey: key, Power: power}}
	return sign(t, b, n.key)
}

func (n *testNode) approve(t testing.TB, seq, id uint64) []byte {
	b := n.body(seq)
	b.Msg = &tokenimv1.TxBody_ApproveValidator{ApproveValidator: &tokenimv1.ApproveValidator{ProposalId: id}}
	return sign(t, b, n.key)
}

func newKey(t testing.TB) []byte {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// validatorChain is a state with count registered validator nodes of
// power 10 each (every node at sequence 1).
func validatorChain(t *testing.T, count int) (*Machine, mapKV, []*testNode) {
	t.Helper()
	m, kv := NewMachine(), newState(t, 0)
	var nodes []*testNode
	var vals []*tokenimv1.Validator
	for i := 0; i < count; i++ {
		n := newNode(t, true)
		deliver(t, m, kv, n.register(t, 0, "https://v.example"))
		nodes = append(nodes, n)
		vals = append(vals, &tokenimv1.Validator{ValidatorKey: n.valPub(), Power: 10})
	}
	if err := InitValidators(kv, vals); err != nil {
		t.Fatal(err)
	}
	return m, kv, nodes
}

func TestValidatorProposalNeedsTwoThirds(t *testing.T) {
	m, kv, v := validatorChain(t, 4)
	newVal := newKey(t)
	if res := deliver(t, m, kv, v[0].propose(t, 1, newVal, 10)); len(res.Updates) != 0 {
		t.Fatalf("1 of 4 applied: %v", res.Updates)
	}
	if res := deliver(t, m, kv, v[1].approve(t, 1, 1)); len(res.Updates) != 0 {
		t.Fatalf("2 of 4 applied: %v", res.Updates)
	}
	prop, err := GetProposal(kv, 1)
	if err != nil || len(prop.Approvers) != 2 || prop.Approvers[0] >= prop.Approvers[1] {
		t.Fatalf("proposal: %v, %v", prop, err)
	}
	full := newNode(t, false)
	deliver(t, m, kv, full.register(t, 0, "https://full.example"))
	twin := newNode(t, false) // a second node of v[0]'s validator
	twin.val = v[0].val
	deliver(t, m, kv, twin.register(t, 0, "https://twin.example"))
	runRejections(t, m, kv, []rejection{
		{"approve twice", v[1].approve(t, 2, 1), ErrAlreadyApproved},
		{"same validator via another node", twin.approve(t, 1, 1), ErrAlreadyApproved},
		{"full node proposes", full.propose(t, 1, newKey(t), 10), ErrNotValidator},
		{"full node approves", full.approve(t, 1, 1), ErrNotValidator},
		{"unregistered node", newNode(t, true).approve(t, 0, 1), ErrUnknownNode},
		{"account signer", sign(t, &tokenimv1.TxBody{ChainId: testChain, Signer: "alice",
			Msg: &tokenimv1.TxBody_ApproveValidator{ApproveValidator: &tokenimv1.ApproveValidator{ProposalId: 1}}}, v[2].key), ErrInvalidNode},
		{"unknown proposal", v[2].approve(t, 1, 99), ErrUnknownProposal},
		{"negative power", v[2].propose(t, 1, newKey(t), -1), ErrInvalidChange},
		{"power over cap", v[2].propose(t, 1, newKey(t), MaxValidatorPower+1), ErrInvalidChange},
		{"remove a non-validator", v[2].propose(t, 1, newKey(t), 0), ErrInvalidChange},
		{"short validator key", v[2].propose(t, 1, newKey(t)[:31], 10), ErrInvalidKey},
		{"replayed approval", v[1].approve(t, 1, 1), ErrBadSequence},
	})
	res := deliver(t, m, kv, v[2].approve(t, 1, 1))
	if len(res.Updates) != 1 || !bytes.Equal(res.Updates[0].ValidatorKey, newVal) || res.Updates[0].Power != 10 {
		t.Fatalf("3 of 4 did not apply: %v", res.Updates)
	}
	set, _ := GetValidators(kv)
	if len(set.Validators) != 5 || validatorPower(set.Validators, newVal) != 10 || set.LastProposalId != 1 {
		t.Fatalf("set after apply: %v", set)
	}
	if _, err := GetProposal(kv, 1); !errors.Is(err, ErrUnknownProposal) {
		t.Fatalf("applied proposal still open: %v", err)
	}
	if _, err := m.Deliver(kv, testBlock, v[3].approve(t, 1, 1)); !errors.Is(err, ErrUnknownProposal) {
		t.Fatalf("approving an applied proposal: %v", err)
	}
}

func TestSingleValidatorChain(t *testing.T) {
	m, kv, v := validatorChain(t, 1)
	runRejections(t, m, kv, []rejection{
		{"remove the last validator", v[0].propose(t, 1, v[0].valPub(), 0), ErrInvalidChange},
	})
	added := newKey(t)
	res := deliver(t, m, kv, v[0].propose(t, 1, added, 5))
	if len(res.Updates) != 1 || res.Updates[0].Power != 5 {
		t.Fatalf("a lone validator's proposal did not apply at once: %v", res.Updates)
	}
	// Now 10 of 15 is not over 2/3: removing the new validator stays open.
	if res := deliver(t, m, kv, v[0].propose(t, 2, added, 0)); len(res.Updates) != 0 {
		t.Fatalf("10 of 15 applied: %v", res.Updates)
	}
	if p, err := GetProposal(kv, 2); err != nil || p.Power != 0 || p.ProposedHeight != testBlock.Height {
		t.Fatalf("open proposal: %v, %v", p, err)
	}
}

func TestChangeSet(t *testing.T) {
	k1, k2 := []byte{1}, []byte{2}
	one := []*tokenimv1.Validator{{ValidatorKey: k1, Power: 10}}
	big := []*tokenimv1.Validator{{ValidatorKey: k1, Power: maxTotalPower - 5}}
	cases := []struct {
		name  string
		set   []*tokenimv1.Validator
		key   []byte
		power int64
		want  []int64 // powers after, by key
		err   error
	}{
		{"add", one, k2, 3, []int64{10, 3}, nil},
		{"update", one, k1, 7, []int64{7}, nil},
		{"remove last", one, k1, 0, nil, ErrInvalidChange},
		{"remove absent", one, k2, 0, nil, ErrInvalidChange},
		{"over total cap", big, k2, 6, nil, ErrInvalidChange},
	}
	for _, c := range cases {
		got, err := changeSet(c.set, c.key, c.power)
		if !errors.Is(err, c.err) {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(got) != len(c.want) {
			t.Fatalf("%s: %v", c.name, got)
		}
		for i, v := range got {
			if v.Power != c.want[i] {
				t.Fatalf("%s: %v", c.name, got)
			}
		}
	}
	if one[0].Power != 10 {
		t.Fatal("changeSet modified its input")
	}
}

func TestInitValidatorsRejects(t *testing.T) {
	k := newKey(t)
	cases := []struct {
		name string
		vals []*tokenimv1.Validator
	}{
		{"short key", []*tokenimv1.Validator{{ValidatorKey: k[:31], Power: 1}}},
		{"zero power", []*tokenimv1.Validator{{ValidatorKey: k, Power: 0}}},
		{"power over cap", []*tokenimv1.Validator{{ValidatorKey: k, Power: MaxValidatorPower + 1}}},
		{"duplicate", []*tokenimv1.Validator{{ValidatorKey: k, Power: 1}, {ValidatorKey: k, Power: 2}}},
	}
	for _, c := range cases {
		if err := InitValidators(mapKV{}, c.vals); err == nil {
			t.Errorf("%s accepted", c.name)
		}
	}
}
