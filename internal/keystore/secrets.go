package keystore

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"strconv"

	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/util/keyhelper"
)

const (
	// MaxHandleLen caps the handle stored in a keystore, in bytes.
	MaxHandleLen = 255
	// maxRegistrationID is the top of Signal's registration id range
	// (1..16380, chosen once per install).
	maxRegistrationID = 16380
)

// Secrets are one account's secret keys. The zero value is not usable; make
// them with Generate or Load.
//
// Secrets redact themselves when printed with any fmt verb. Printing a field
// on its own (AccountKey, IdentityKeyPair) is not protected: never do it.
type Secrets struct {
	// Handle is the account's handle (not secret; kept for display).
	Handle string
	// AccountKey signs the account's ledger transactions.
	AccountKey ed25519.PrivateKey
	// IdentityKeyPair is the Signal identity key pair (Curve25519).
	IdentityKeyPair *identity.KeyPair
	// RegistrationID is the Signal registration id, 1..16380.
	RegistrationID uint32
	// StorageKey encrypts the client's local databases.
	StorageKey [32]byte
}

// Generate returns fresh Secrets for handle, drawing every key from
// crypto/rand (the identity key pair through libsignal's keyhelper).
func Generate(handle string) (*Secrets, error) {
	if err := checkHandle(handle); err != nil {
		return nil, err
	}
	_, accountKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("keystore: generate account key: %w", err)
	}
	ikp, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		return nil, fmt.Errorf("keystore: generate identity key: %w", err)
	}
	regID, err := rand.Int(rand.Reader, big.NewInt(maxRegistrationID))
	if err != nil {
		return nil, fmt.Errorf("keystore: generate registration id: %w", err)
	}
	s := &Secrets{
		Handle:          handle,
		AccountKey:      accountKey,
		IdentityKeyPair: ikp,
		RegistrationID:  uint32(regID.Int64()) + 1,
	}
	if _, err := io.ReadFull(rand.Reader, s.StorageKey[:]); err != nil {
		return nil, fmt.Errorf("keystore: generate storage key: %w", err)
	}
	return s, nil
}

// Wipe overwrites the account key and the storage key with zeros and drops
// the identity key pair. It is best effort: copies made elsewhere (and the
// copy libsignal keeps inside the key pair) are not reached.
func (s *Secrets) Wipe() {
	if s == nil {
		return
	}
	clear(s.AccountKey)
	clear(s.StorageKey[:])
	s.IdentityKeyPair = nil
}

// String returns a redacted description that names only the handle.
func (s Secrets) String() string {
	return "keystore.Secrets{Handle: " + strconv.Quote(s.Handle) + ", keys: redacted}"
}

// GoString is like String, for %#v.
func (s Secrets) GoString() string {
	return s.String()
}

// Format makes every fmt verb (%v, %+v, %#v, %s, %x, %q, ...) print the
// redacted String, so no key byte can reach a log line through fmt.
func (s Secrets) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, s.String())
}

func checkHandle(handle string) error {
	if handle == "" || len(handle) > MaxHandleLen {
		return fmt.Errorf("%w: handle must have 1..%d bytes", ErrInvalid, MaxHandleLen)
	}
	return nil
}
