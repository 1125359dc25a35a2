package ledger

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// validatorsModule owns the validator set and its change proposals
// (prefix v/): ProposeValidator and ApproveValidator, each signed by the
// node of a current validator (NodeRecord.validator_key in the set).
//
// A proposal is applied, within the transaction that makes its approvers'
// power exceed 2/3 of the current total, and closed; the change goes to
// CometBFT through Result.Updates. Approvals are counted per validator key,
// at the current powers, so a validator counts once however many nodes
// name it. A change that would empty the set, remove an absent validator
// or exceed CometBFT's total power cap is refused, both when proposed and
// when it would apply.
type validatorsModule struct{}

func (validatorsModule) Name() string { return "validators" }

func (validatorsModule) Handles(body *tokenimv1.TxBody) bool {
	switch body.Msg.(type) {
	case *tokenimv1.TxBody_ProposeValidator, *tokenimv1.TxBody_ApproveValidator:
		return true
	}
	return false
}

func (validatorsModule) Authenticate(r Reader, body *tokenimv1.TxBody) (Signer, error) {
	return authenticateNode(r, body)
}

// GetValidators reads the validator set the ledger tracks (empty if
// InitChain stored none).
func GetValidators(r Reader) (*tokenimv1.ValidatorSet, error) {
	var set tokenimv1.ValidatorSet
	if _, err := getProto(r, keyValidators, &set); err != nil {
		return nil, err
	}
	return &set, nil
}

// GetProposal reads an open validator proposal; ErrUnknownProposal if it
// does not exist or was applied.
func GetProposal(r Reader, id uint64) (*tokenimv1.ValidatorProposal, error) {
	var p tokenimv1.ValidatorProposal
	ok, err := getProto(r, proposalKey(id), &p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownProposal, id)
	}
	return &p, nil
}

// validatorPower is key's power in set, 0 if it is not a validator.
func validatorPower(set []*tokenimv1.Validator, key []byte) int64 {
	if i, ok := findValidator(set, key); ok {
		return set[i].Power
	}
	return 0
}

func findValidator(set []*tokenimv1.Validator, key []byte) (int, bool) {
	return slices.BinarySearchFunc(set, key, func(v *tokenimv1.Validator, k []byte) int {
		return bytes.Compare(v.ValidatorKey, k)
	})
}

// validatorPlan is what a proposal or approval does, computed from the
// state alone so Validate and Apply agree.
type validatorPlan struct {
	set     *tokenimv1.ValidatorSet      // current set (last_proposal_id advanced by a proposal)
	prop    *tokenimv1.ValidatorProposal // the proposal with this transaction's approval
	created bool                         // prop is new
	applied []*tokenimv1.Validator       // the set after the change; nil if not approved yet
}

func planValidatorTx(ctx *Context, body *tokenimv1.TxBody) (*validatorPlan, error) {
	set, err := GetValidators(ctx.KV)
	if err != nil {
		return nil, err
	}
	node := ctx.Signer.Node
	if validatorPower(set.Validators, node.ValidatorKey) <= 0 {
		return nil, fmt.Errorf("%w: node %s", ErrNotValidator, node.NodeId)
	}
	p := &validatorPlan{set: set}
	switch m := body.Msg.(type) {
	case *tokenimv1.TxBody_ProposeValidator:
		p.prop, err = propose(ctx, set, m.ProposeValidator)
		p.created = true
	case *tokenimv1.TxBody_ApproveValidator:
		p.prop, err = approve(ctx.KV, m.ApproveValidator.ProposalId, node)
	default:
		return nil, ErrUnknownMessage
	}
	if err != nil {
		return nil, err
	}
	ok, err := approved(ctx.KV, set.Validators, p.prop.Approvers)
	if err != nil || !ok {
		return p, err
	}
	if p.applied, err = changeSet(set.Validators, p.prop.ValidatorKey, p.prop.Power); err != nil {
		return nil, err
	}
	return p, nil
}

// propose checks a new proposal and numbers it (advancing set's counter).
func propose(ctx *Context, set *tokenimv1.ValidatorSet, m *tokenimv1.ProposeValidator) (*tokenimv1.ValidatorProposal, error) {
	if len(m.ValidatorKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: validator key is %d bytes, want %d", ErrInvalidKey, len(m.ValidatorKey), ed25519.PublicKeySize)
	}
	if m.Power < 0 || m.Power > MaxValidatorPower {
		return nil, fmt.Errorf("%w: power %d outside 0..%d", ErrInvalidChange, m.Power, int64(MaxValidatorPower))
	}
	if _, err := changeSet(set.Validators, m.ValidatorKey, m.Power); err != nil {
		return nil, err
	}
	set.LastProposalId++
	return &tokenimv1.ValidatorProposal{
		Id: set.LastProposalId, ValidatorKey: m.ValidatorKey, Power: m.Power,
		Approvers: []string{ctx.Signer.Node.NodeId}, ProposedHeight: ctx.Height,
	}, nil
}

// approve adds node to proposal id's approvers, unless it or another node
// with the same validator key already approved.
func approve(r Reader, id uint64, node *tokenimv1.NodeRecord) (*tokenimv1.ValidatorProposal, error) {
	prop, err := GetProposal(r, id)
	if err != nil {
		return nil, err
	}
	i, found := slices.BinarySearch(prop.Approvers, node.NodeId)
	if found {
		return nil, fmt.Errorf("%w: node %s, proposal %d", ErrAlreadyApproved, node.NodeId, id)
	}
	for _, a := range prop.Approvers {
		rec, err := GetNode(r, a)
		if err != nil {
			return nil, fmt.Errorf("%w: approver: %v", ErrInternal, err)
		}
		if bytes.Equal(rec.ValidatorKey, node.ValidatorKey) {
			return nil, fmt.Errorf("%w: validator %X via node %s, proposal %d", ErrAlreadyApproved, node.ValidatorKey, a, id)
		}
	}
	prop.Approvers = slices.Insert(prop.Approvers, i, node.NodeId)
	return prop, nil
}

// approved reports whether the approvers' validators hold more than 2/3
// of the set's power: 3*approved > 2*total, in uint64 (powers are at most
// maxTotalPower, so 3*total does not overflow).
func approved(r Reader, set []*tokenimv1.Validator, approvers []string) (bool, error) {
	var total, yes uint64
	for _, v := range set {
		total += uint64(v.Power)
	}
	var seen [][]byte
	for _, id := range approvers {
		rec, err := GetNode(r, id)
		if err != nil {
			return false, fmt.Errorf("%w: approver: %v", ErrInternal, err)
		}
		if len(rec.ValidatorKey) == 0 || slices.ContainsFunc(seen, func(k []byte) bool { return bytes.Equal(k, rec.ValidatorKey) }) {
			continue
		}
		seen = append(seen, rec.ValidatorKey)
		yes += uint64(validatorPower(set, rec.ValidatorKey))
	}
	return 3*yes > 2*total, nil
}

// changeSet returns set with key's power set to power (0 removes it),
// or ErrInvalidChange if CometBFT would refuse the result.
func changeSet(set []*tokenimv1.Validator, key []byte, power int64) ([]*tokenimv1.Validator, error) {
	next := slices.Clone(set)
	i, found := findValidator(next, key)
	switch {
	case power == 0 && !found:
		return nil, fmt.Errorf("%w: %X is not a validator", ErrInvalidChange, key)
	case power == 0:
		next = slices.Delete(next, i, i+1)
	case found:
		next[i] = &tokenimv1.Validator{ValidatorKey: key, Power: power}
	default:
		next = slices.Insert(next, i, &tokenimv1.Validator{ValidatorKey: key, Power: power})
	}
	if len(next) == 0 {
		return nil, fmt.Errorf("%w: it would leave no validator", ErrInvalidChange)
	}
	var total int64
	for _, v := range next {
		if total += v.Power; total > maxTotalPower {
			return nil, fmt.Errorf("%w: total power over %d", ErrInvalidChange, maxTotalPower)
		}
	}
	return next, nil
}

func (validatorsModule) Validate(ctx *Context, body *tokenimv1.TxBody) error {
	_, err := planValidatorTx(ctx, body)
	return err
}

func (validatorsModule) Apply(ctx *Context, body *tokenimv1.TxBody) error {
	p, err := planValidatorTx(ctx, body)
	if err != nil {
		return err
	}
	if p.applied == nil {
		if p.created {
			if err := setProto(ctx.KV, keyValidators, p.set); err != nil {
				return err
			}
		}
		return setProto(ctx.KV, proposalKey(p.prop.Id), p.prop)
	}
	p.set.Validators = p.applied
	if err := setProto(ctx.KV, keyValidators, p.set); err != nil {
		return err
	}
	if err := deleteKey(ctx.KV, proposalKey(p.prop.Id)); err != nil {
		return err
	}
	ctx.Updates = append(ctx.Updates, &tokenimv1.Validator{ValidatorKey: p.prop.ValidatorKey, Power: p.prop.Power})
	return nil
}
