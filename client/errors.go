package client

import (
	"errors"

	"github.com/tokenim/tokenim/internal/keystore"
	"github.com/tokenim/tokenim/internal/ledger"
)

// Errors a caller can branch on with errors.Is.
var (
	ErrNoAccount       = errors.New("no account in this home")
	ErrAccountExists   = errors.New("this home already has an account")
	ErrWrongPassphrase = keystore.ErrWrongPassphrase
	ErrLocked          = keystore.ErrLocked
	ErrNoPassphrase    = errors.New("no passphrase given")
	ErrUnknownHandle   = ledger.ErrUnknownAccount
	ErrHandleTaken     = ledger.ErrHandleTaken
	ErrInvalidHandle   = ledger.ErrInvalidHandle
	ErrTooLarge        = errors.New("message too large")
	ErrEmpty           = errors.New("empty message")
	ErrNodeUnreachable = errors.New("node unreachable")
	// ErrNotCommitted: a transaction reached the node but no block took it
	// in time (the chain stalls); it may still commit.
	ErrNotCommitted = errors.New("not committed yet: the chain made no block in time")
	// ErrRegistrationPending: the account's registration was sent but is
	// not on chain yet; the home keeps the keys, and opening it (or
	// creating the same account in it again) finishes the registration.
	ErrRegistrationPending = errors.New("registration not on chain yet")
	ErrIdentityMismatch    = errors.New("identity key does not match the chain's record")
	ErrNoPrekey            = errors.New("recipient has no signed prekey")
	ErrUnknownMessage      = errors.New("no message with that id in the local history")
	// ErrDecrypt is the one error for any envelope that fails to decrypt or
	// decode: no detail, no oracle.
	ErrDecrypt = errors.New("message could not be decrypted")
)
