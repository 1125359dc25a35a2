package client

import (
	"errors"

	"github.com/tokenim/tokenim/internal/keystore"
	"github.com/tokenim/tokenim/internal/ledger"
)

// Errors a caller can branch on with errors.Is.
var (
	ErrNoAccount        = errors.New("no account in this home")
	ErrAccountExists    = errors.New("this home already has an account")
	ErrWrongPassphrase  = keystore.ErrWrongPassphrase
	ErrLocked           = keystore.ErrLocked
	ErrNoPassphrase     = errors.New("no passphrase given")
	ErrUnknownHandle    = ledger.ErrUnknownAccount
	ErrHandleTaken      = ledger.ErrHandleTaken
	ErrInvalidHandle    = ledger.ErrInvalidHandle
	ErrTooLarge         = errors.New("message too large")
	ErrEmpty            = errors.New("empty message")
	ErrNodeUnreachable  = errors.New("node unreachable")
	ErrIdentityMismatch = errors.New("identity key does not match the chain's record")
	ErrNoPrekey         = errors.New("recipient has no signed prekey")
	ErrUnknownMessage   = errors.New("no message with that id in the local history")
	// ErrDecrypt is the one error for any envelope that fails to decrypt or
	// decode: no detail, no oracle.
	ErrDecrypt = errors.New("message could not be decrypted")
)
