package ledger

import (
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
	// Signer is the signer's account, nil for a registration.
	Signer *tokenimv1.Account
}

// Module owns a state prefix and some transaction messages.
type Module interface {
	// Name is a short identifier used in logs.
	Name() string
	// Handles reports whether the module owns body's message.
	Handles(body *tokenimv1.TxBody) bool
	// Authenticate returns the public key that must have signed body, and the
	// signer's account (nil if the message creates it).
	Authenticate(r Reader, body *tokenimv1.TxBody) (pub []byte, signer *tokenimv1.Account, err error)
	// Validate checks the message against the state without writing.
	Validate(ctx *Context, body *tokenimv1.TxBody) error
	// Apply writes the message's effects; called only after Validate passed.
	Apply(ctx *Context, body *tokenimv1.TxBody) error
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
// exactSeq demands sequence == the account's next one (delivery); otherwise
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
	pub, signer, err := mod.Authenticate(kv, body)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := tx.VerifyWith(pub); err != nil {
		return nil, nil, nil, err
	}
	if err := checkSequence(signer, body.Sequence, exactSeq); err != nil {
		return nil, nil, nil, err
	}
	params, err := GetParams(kv)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrInternal, err)
	}
	ctx := &Context{Block: b, KV: kv, Params: params, Signer: signer}
	if err := mod.Validate(ctx, body); err != nil {
		return nil, nil, nil, err
	}
	return ctx, mod, body, nil
}

func checkSequence(signer *tokenimv1.Account, seq uint64, exact bool) error {
	want := uint64(0)
	if signer != nil {
		want = signer.Sequence
	}
	if seq == want || (!exact && seq > want && signer != nil) {
		return nil
	}
	return fmt.Errorf("%w: got %d, account expects %d", ErrBadSequence, seq, want)
}

// Check validates raw against kv without writing (CheckTx).
func (m *Machine) Check(kv KV, b Block, raw []byte) error {
	_, _, _, err := m.prepare(kv, b, raw, false)
	return err
}

// Deliver validates raw and applies it to kv (FinalizeBlock). On error kv is
// unchanged: validation finishes before the first write.
func (m *Machine) Deliver(kv KV, b Block, raw []byte) error {
	ctx, mod, body, err := m.prepare(kv, b, raw, true)
	if err != nil {
		return err
	}
	if err := mod.Apply(ctx, body); err != nil {
		return err
	}
	if ctx.Signer != nil {
		// A registration sets the new account's sequence itself.
		acct, err := GetAccount(kv, ctx.Signer.Handle)
		if err != nil {
			return err
		}
		acct.Sequence++
		return setProto(kv, accountKey(acct.Handle), acct)
	}
	return nil
}

// InitGenesis writes the genesis parameters.
func InitGenesis(kv KV, g *tokenimv1.GenesisState) error {
	p := g.GetParams()
	if p == nil {
		p = &tokenimv1.Params{PowDifficulty: DefaultPowDifficulty}
	}
	if p.PowDifficulty > MaxPowDifficulty {
		return fmt.Errorf("ledger: genesis pow_difficulty %d over cap %d", p.PowDifficulty, MaxPowDifficulty)
	}
	return setProto(kv, keyParams, p)
}
