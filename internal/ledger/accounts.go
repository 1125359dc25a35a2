package ledger

import (
	"crypto/ed25519"
	"fmt"
	"slices"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"go.mau.fi/libsignal/ecc"
)

// accountsModule owns accounts (prefix a/) and key histories (prefix h/):
// RegisterAccount, RotateSignedPrekey and SetHomeNodes.
type accountsModule struct{}

func (accountsModule) Name() string { return "accounts" }

func (accountsModule) Handles(body *tokenimv1.TxBody) bool {
	switch body.Msg.(type) {
	case *tokenimv1.TxBody_RegisterAccount, *tokenimv1.TxBody_RotateSignedPrekey, *tokenimv1.TxBody_SetHomeNodes:
		return true
	}
	return false
}

func (accountsModule) Authenticate(r Reader, body *tokenimv1.TxBody) (Signer, error) {
	handle, err := NormalizeHandle(body.Signer)
	if err != nil {
		return Signer{}, err
	}
	if handle != body.Signer {
		return Signer{}, fmt.Errorf("%w: signer %q is not lowercase", ErrInvalidHandle, body.Signer)
	}
	if reg, ok := body.Msg.(*tokenimv1.TxBody_RegisterAccount); ok {
		if reg.RegisterAccount.Handle != handle {
			return Signer{}, fmt.Errorf("%w: signer %q registers %q", ErrInvalidHandle, handle, reg.RegisterAccount.Handle)
		}
		return Signer{Key: reg.RegisterAccount.AccountKey}, nil
	}
	acct, err := GetAccount(r, handle)
	if err != nil {
		return Signer{}, err
	}
	return Signer{Key: acct.AccountKey, Account: acct}, nil
}

func (accountsModule) Validate(ctx *Context, body *tokenimv1.TxBody) error {
	switch m := body.Msg.(type) {
	case *tokenimv1.TxBody_RegisterAccount:
		return validateRegister(ctx, m.RegisterAccount)
	case *tokenimv1.TxBody_RotateSignedPrekey:
		return validateSignedPrekey(ctx.Signer.Account.IdentityKey, m.RotateSignedPrekey.SignedPrekey)
	case *tokenimv1.TxBody_SetHomeNodes:
		return validateHomeNodes(ctx.KV, m.SetHomeNodes.NodeIds)
	}
	return ErrUnknownMessage
}

func validateRegister(ctx *Context, r *tokenimv1.RegisterAccount) error {
	if len(r.AccountKey) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: account key is %d bytes, want %d", ErrInvalidKey, len(r.AccountKey), ed25519.PublicKeySize)
	}
	if _, err := decodeIdentityKey(r.IdentityKey); err != nil {
		return err
	}
	if err := validateSignedPrekey(r.IdentityKey, r.SignedPrekey); err != nil {
		return err
	}
	if !CheckWork(ctx.ChainID, r.Handle, r.AccountKey, r.PowNonce, ctx.Params.PowDifficulty) {
		return fmt.Errorf("%w: need %d zero bits", ErrInsufficientWork, ctx.Params.PowDifficulty)
	}
	existing, err := ctx.KV.Get(accountKey(r.Handle))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInternal, err)
	}
	if existing != nil {
		return fmt.Errorf("%w: @%s", ErrHandleTaken, r.Handle)
	}
	return nil
}

// decodeIdentityKey checks a Signal public key: 33 bytes, type byte 0x05.
func decodeIdentityKey(b []byte) (ecc.ECPublicKeyable, error) {
	if len(b) != 33 || b[0] != ecc.DjbType {
		return nil, fmt.Errorf("%w: Signal public key must be 33 bytes starting 0x05", ErrInvalidKey)
	}
	k, err := ecc.DecodePoint(b, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return k, nil
}

func validateSignedPrekey(identityKey []byte, spk *tokenimv1.SignedPrekey) error {
	if spk == nil {
		return fmt.Errorf("%w: missing", ErrInvalidPrekey)
	}
	ik, err := decodeIdentityKey(identityKey)
	if err != nil {
		return err
	}
	if _, err := decodeIdentityKey(spk.PublicKey); err != nil {
		return fmt.Errorf("%w: signed prekey: %v", ErrInvalidPrekey, err)
	}
	if len(spk.Signature) != 64 {
		return fmt.Errorf("%w: signature is %d bytes", ErrInvalidPrekey, len(spk.Signature))
	}
	var sig [64]byte
	copy(sig[:], spk.Signature)
	if !ecc.VerifySignature(ik, spk.PublicKey, sig) {
		return ErrInvalidPrekey
	}
	return nil
}

// validateHomeNodes accepts 1 to MaxHomeNodes distinct registered node ids.
func validateHomeNodes(r Reader, ids []string) error {
	if len(ids) == 0 || len(ids) > MaxHomeNodes {
		return fmt.Errorf("%w: %d given", ErrInvalidHomeNodes, len(ids))
	}
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			return fmt.Errorf("%w: %s listed twice", ErrInvalidHomeNodes, id)
		}
		if _, err := GetNode(r, id); err != nil {
			return err
		}
	}
	return nil
}

func (accountsModule) Apply(ctx *Context, body *tokenimv1.TxBody) error {
	switch m := body.Msg.(type) {
	case *tokenimv1.TxBody_RegisterAccount:
		r := m.RegisterAccount
		acct := &tokenimv1.Account{
			Handle: r.Handle, AccountKey: r.AccountKey, IdentityKey: r.IdentityKey,
			RegistrationId: r.RegistrationId, SignedPrekey: r.SignedPrekey,
			Sequence: 1, RegisteredHeight: ctx.Height,
		}
		return appendKeyEvent(ctx, acct, tokenimv1.KeyEvent_KIND_REGISTERED)
	case *tokenimv1.TxBody_RotateSignedPrekey:
		acct := ctx.Signer.Account
		acct.SignedPrekey = m.RotateSignedPrekey.SignedPrekey
		return appendKeyEvent(ctx, acct, tokenimv1.KeyEvent_KIND_SIGNED_PREKEY_ROTATED)
	case *tokenimv1.TxBody_SetHomeNodes:
		acct := ctx.Signer.Account
		acct.HomeNodes = m.SetHomeNodes.NodeIds
		return setProto(ctx.KV, accountKey(acct.Handle), acct)
	}
	return ErrUnknownMessage
}

// appendKeyEvent records the account's current keys in its history and
// writes the account.
func appendKeyEvent(ctx *Context, acct *tokenimv1.Account, kind tokenimv1.KeyEvent_Kind) error {
	ev := &tokenimv1.KeyEvent{Kind: kind, Height: ctx.Height, IdentityKey: acct.IdentityKey, SignedPrekey: acct.SignedPrekey}
	if err := setProto(ctx.KV, historyKey(acct.Handle, acct.KeyEvents), ev); err != nil {
		return err
	}
	acct.KeyEvents++
	return setProto(ctx.KV, accountKey(acct.Handle), acct)
}
