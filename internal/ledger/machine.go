package ledger

import (
	"errors"
	"fmt"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// Block is what the machine knows of the block a transaction is in. It comes
// from the block header, never from a clock.
type Block struct {
	ChainID string
	Height  int64
	TimeMs  int64
}

// Context is handed to a module for one transaction.
type Context struct {
	Block
	KV     KV
	Params *tokenimv1.Params
	// Signer is who signed the transaction.
	Signer Signer
	// Updates collects the validator set changes the transaction applied,
	// in order; Deliver returns them in its Result.
	Updates []*tokenimv1.Validator
}

// Signer is the actor that signed a transaction, as Module.Authenticate
// finds it: an account or a node. Both Account and Node are nil when the
// transaction creates its signer (RegisterAccount, a node's first
// RegisterNode); its sequence must then be 0.
type Signer struct {
	// Key is the Ed25519 public key the signature must verify with.
	Key     []byte
	Account *tokenimv1.Account
	Node    *tokenimv1.NodeRecord
}

// nextSequence is the sequence the signer's transaction must carry, and
// whether the signer exists yet.
func (s Signer) nextSequence() (uint64, bool) {
	switch {
	case s.Account != nil:
		return s.Account.Sequence, true
	case s.Node != nil:
		return s.Node.Sequence, true
	}
	return 0, false
}

// bumpSequence re-reads the signer's record (Apply may have rewritten it)
// and increments its sequence. A creating transaction sets the new
// record's sequence itself.
func (s Signer) bumpSequence(kv KV) error {
	switch {
	case s.Account != nil:
		acct, err := GetAccount(kv, s.Account.Handle)
		if err != nil {
			return err
		}
		acct.Sequence++
		return setProto(kv, accountKey(acct.Handle), acct)
	case s.Node != nil:
		rec, err := GetNode(kv, s.Node.NodeId)
		if err != nil {
			return err
		}
		rec.Sequence++
		return setProto(kv, nodeKey(rec.NodeId), rec)
	}
	return nil
}

// Module owns a state prefix and some transaction messages.
type Module interface {
	// Name is a short identifier used in logs.
	Name() string
	// Handles reports whether the module owns body's message.
	Handles(body *tokenimv1.TxBody) bool
	// Authenticate finds the signer of body and the key that must have
	// signed it.
	Authenticate(r Reader, body *tokenimv1.TxBody) (Signer, error)
	// Validate checks the message against the state without writing.
	Validate(ctx *Context, body *tokenimv1.TxBody) error
	// Apply writes the message's effects; called only after Validate passed.
	Apply(ctx *Context, body *tokenimv1.TxBody) error
}

// Result is what an accepted transaction did beyond the state: the
// validator set changes it applied, which FinalizeBlock hands to CometBFT.
type Result struct {
	Updates []*tokenimv1.Validator
	// HomesOf names the account whose home nodes the transaction set
	// (RegisterAccount, SetHomeNodes): caches of mailbox placement drop it.
	HomesOf string
}

// Machine is the pure transaction processor.
type Machine struct {
	modules []Module
}

// NewMachine returns a machine with every module of modules.go registered.
func NewMachine() *Machine { return &Machine{modules: registeredModules()} }

func (m *Machine) moduleFor(body *tokenimv1.TxBody) (Module, error) {
	for _, mod := range m.modules {
		if mod.Handles(body) {
			return mod, nil
		}
	}
	return nil, ErrUnknownMessage
}

// prepare decodes raw, authenticates it and validates it against kv.
// exactSeq demands sequence == the signer's next one (delivery); otherwise
// a sequence at or above it passes (the mempool may hold earlier ones).
func (m *Machine) prepare(kv KV, b Block, raw []byte, exactSeq bool) (*Context, Module, *tokenimv1.TxBody, error) {
	tx, err := DecodeTx(raw)
	if err != nil {
		return nil, nil, nil, err
	}
	body := tx.Body
	if body.ChainId != b.ChainID {
		return nil, nil, nil, fmt.Errorf("%w: %q, this chain is %q", ErrWrongChain, body.ChainId, b.ChainID)
	}
	mod, err := m.moduleFor(body)
	if err != nil {
		return nil, nil, nil, err
	}
	signer, err := mod.Authenticate(kv, body)
	if err != nil {
		if !exactSeq && (errors.Is(err, ErrUnknownAccount) || errors.Is(err, ErrUnknownNode)) {
			return nil, nil, nil, nil // the signer may be in a block not applied here yet
		}
		return nil, nil, nil, err
	}
	if err := tx.VerifyWith(signer.Key); err != nil {
		return nil, nil, nil, err
	}
	if unsequenced(body) {
		if body.Sequence != 0 {
			return nil, nil, nil, fmt.Errorf("%w: this transaction carries no sequence (0), got %d", ErrBadSequence, body.Sequence)
		}
	} else if err := checkSequence(signer, body.Sequence, exactSeq); err != nil {
		return nil, nil, nil, err
	}
	params, err := GetParams(kv)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrInternal, err)
	}
	ctx := &Context{Block: b, KV: kv, Params: params, Signer: signer}
	if !exactSeq && !checkedAtAdmission(body) {
		return ctx, mod, body, nil
	}
	if err := mod.Validate(ctx, body); err != nil {
		return nil, nil, nil, err
	}
	return ctx, mod, body, nil
}

// unsequenced lists the messages that carry no sequence number and do not
// advance the signer's: their own content cannot be replayed (an AnchorLog
// must extend the node's current anchor). A node's anchors then never
// compete for its sequence with what its operator signs meanwhile.
func unsequenced(body *tokenimv1.TxBody) bool {
	_, ok := body.Msg.(*tokenimv1.TxBody_AnchorLog)
	return ok
}

func checkSequence(signer Signer, seq uint64, exact bool) error {
	want, exists := signer.nextSequence()
	if seq == want || (!exact && seq > want && exists) {
		return nil
	}
	return fmt.Errorf("%w: got %d, signer expects %d", ErrBadSequence, seq, want)
}

// checkedAtAdmission lists the messages whose validity cannot change with
// blocks a node has not applied yet (a taken handle or policy name stays
// taken; proof of work and keys do not depend on state), so CheckTx may
// refuse them. Everything else is validated only in FinalizeBlock: a node
// whose state lags one block must still accept and gossip, say, an approval
// of a proposal it has not seen, or with blocks made only when a mempool has
// transactions the network could wait forever for the one node that has it.
func checkedAtAdmission(body *tokenimv1.TxBody) bool {
	switch body.Msg.(type) {
	case *tokenimv1.TxBody_RegisterAccount, *tokenimv1.TxBody_DeployPolicy:
		return true
	}
	return false
}

// Check validates raw against kv without writing (CheckTx): encoding,
// chain, signature and sequence (a later one may wait in the mempool), and
// the state-independent rules of checkedAtAdmission.
func (m *Machine) Check(kv KV, b Block, raw []byte) error {
	_, _, _, err := m.prepare(kv, b, raw, false)
	return err
}

// Deliver validates raw and applies it to kv (FinalizeBlock). On error kv is
// unchanged: validation finishes before the first write.
func (m *Machine) Deliver(kv KV, b Block, raw []byte) (Result, error) {
	ctx, mod, body, err := m.prepare(kv, b, raw, true)
	if err != nil {
		return Result{}, err
	}
	if err := mod.Apply(ctx, body); err != nil {
		return Result{}, err
	}
	res := Result{Updates: ctx.Updates}
	switch body.Msg.(type) {
	case *tokenimv1.TxBody_RegisterAccount, *tokenimv1.TxBody_SetHomeNodes:
		res.HomesOf = body.Signer
	}
	if unsequenced(body) {
		return res, nil
	}
	if err := ctx.Signer.bumpSequence(kv); err != nil {
		return Result{}, err
	}
	return res, nil
}
