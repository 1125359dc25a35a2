package relay

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed: the store was closed (or closed before the call committed).
	ErrClosed = errors.New("relay: store closed")
	// ErrInvalidEnvelope: an envelope failed validation; see EnvelopeError.
	ErrInvalidEnvelope = errors.New("relay: invalid envelope")
	// ErrTooManyEnvelopes: more than MaxAppendEnvelopes in one Append.
	ErrTooManyEnvelopes = errors.New("relay: too many envelopes in one append")
	// ErrInvalidName: a recipient or account name is empty or longer than MaxName.
	ErrInvalidName = errors.New("relay: invalid recipient or account name")
	// ErrInvalidPrekey: a one-time prekey is nil or its public key is empty
	// or longer than MaxPrekeyBytes.
	ErrInvalidPrekey = errors.New("relay: invalid one-time prekey")
	// ErrTooManyPrekeys: the account would hold more than MaxPrekeysPerAccount.
	ErrTooManyPrekeys = errors.New("relay: too many one-time prekeys")
	// ErrCorrupt: a stored record does not decode (disk corruption or a bug).
	ErrCorrupt = errors.New("relay: corrupt record")
	// ErrLayout: the directory holds a store with an unknown key layout.
	ErrLayout = errors.New("relay: unknown store layout version")
)

// ReasonHeader is the error metadata (a response header) in which a node
// says why it answered unavailable. ReasonReplicas: the node is up, but
// fewer than a majority of the mailbox's replicas stored the envelopes
// (retry later). ReasonNoBlock: a transaction waits in the mempool, but no
// block took it in time (it may still commit).
const (
	ReasonHeader   = "Tokenim-Reason"
	ReasonReplicas = "replicas"
	ReasonNoBlock  = "no-block"
)

// EnvelopeError says which envelope of an Append call is invalid and why.
// It wraps ErrInvalidEnvelope.
type EnvelopeError struct {
	Index  int    // position in the Append call
	Field  string // "envelope", "id", "to" or "ciphertext"
	Reason string
}

func (e *EnvelopeError) Error() string {
	return fmt.Sprintf("%v: envelope %d: %s: %s", ErrInvalidEnvelope, e.Index, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidEnvelope.
func (e *EnvelopeError) Unwrap() error { return ErrInvalidEnvelope }

func checkName(name string) error {
	if name == "" || len(name) > MaxName {
		return fmt.Errorf("%w: %d bytes (1 to %d)", ErrInvalidName, len(name), MaxName)
	}
	return nil
}
