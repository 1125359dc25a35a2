package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/signalstore"
	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
)

// bucketContacts pins each contact's chain-recorded identity key:
// contacts/<handle> = identity key bytes.
const bucketContacts = "contacts"

// Fingerprint is a short, human-comparable digest of an identity key:
// the first 20 bytes of SHA-256, in five groups of eight hex digits.
func Fingerprint(identityKey []byte) string {
	d := sha256.Sum256(identityKey)
	h := hex.EncodeToString(d[:20])
	parts := make([]string, 0, 5)
	for i := 0; i < len(h); i += 8 {
		parts = append(parts, h[i:i+8])
	}
	return strings.Join(parts, " ")
}

// chainIdentity returns the identity key the chain records for handle —
// proven against a header the trusted validators signed (ProveAccount), so
// a node cannot serve a forged or stale key — and checks it against the
// key pinned for that contact.
//
// A key proven less than identityFresh ago is used again without a new
// proof. Until the recipient answers, every message of a new conversation
// is a PreKeySignalMessage that carries the sender's identity key, and a
// proof of the latest state waits for the next block: proving it for each
// message made a one-way conversation wait up to a block per message.
// The price: a key changed on chain reaches this client up to
// identityFresh late.
func (c *Client) chainIdentity(ctx context.Context, handle string) (*tokenimv1.Account, error) {
	if v, ok := c.proven.Load(handle); ok {
		if p := v.(provenKey); time.Since(p.at) < identityFresh {
			return p.acct, nil
		}
	}
	acct, _, err := c.ProveAccount(ctx, handle)
	if err != nil {
		return nil, err
	}
	pinned, ok, err := c.store.Get(bucketContacts, handle)
	if err != nil {
		return nil, err
	}
	if ok && !bytes.Equal(pinned, acct.IdentityKey) {
		return nil, fmt.Errorf("%w: @%s's identity key changed from %s to %s", ErrIdentityMismatch, handle, Fingerprint(pinned), Fingerprint(acct.IdentityKey))
	}
	if !ok {
		if err := c.store.Put(bucketContacts, handle, acct.IdentityKey); err != nil {
			return nil, err
		}
	}
	c.proven.Store(handle, provenKey{acct: acct, at: time.Now()})
	return acct, nil
}

// identityFresh is how long a proven identity key is used without a new
// proof (chainIdentity).
const identityFresh = time.Minute

// provenKey is an account record proven against the chain, and when.
type provenKey struct {
	acct *tokenimv1.Account
	at   time.Time
}

// fetchBundle fetches handle's prekey bundle, whose identity key must
// equal the chain's record (proven). It asks the network and changes no
// Signal state: it runs without c.mu.
func (c *Client) fetchBundle(ctx context.Context, handle string) (*prekey.Bundle, error) {
	acct, err := c.chainIdentity(ctx, handle)
	if err != nil {
		return nil, err
	}
	res, err := call(ctx, c, "get prekey bundle", &tokenimv1.GetPrekeyBundleRequest{Handle: handle}, c.relay.GetPrekeyBundle)
	if connect.CodeOf(err) == connect.CodeNotFound {
		return nil, fmt.Errorf("%w: @%s", ErrUnknownHandle, handle)
	}
	if err != nil {
		return nil, err
	}
	ba := res.Account
	if ba.GetHandle() != handle || !bytes.Equal(ba.IdentityKey, acct.IdentityKey) {
		return nil, fmt.Errorf("%w: the node's bundle for @%s has another identity key", ErrIdentityMismatch, handle)
	}
	return toBundle(ba, res.OneTimePrekey)
}

// processBundle runs X3DH with a fetched bundle through st (the store,
// or one bound to a transaction), unless a session with handle was built
// meanwhile (by another send to it). Called with c.mu held.
func (c *Client) processBundle(ctx context.Context, st *signalstore.Store, handle string, addr *protocol.SignalAddress, bundle *prekey.Bundle) error {
	if has, err := st.ContainsSession(ctx, addr); err != nil || has {
		return err
	}
	b := session.NewBuilderFromSignal(st, addr, st.Serializer())
	if err := b.ProcessBundle(ctx, bundle); err != nil {
		return fmt.Errorf("X3DH with @%s: %w", handle, err)
	}
	return nil
}

func toBundle(a *tokenimv1.Account, otk *tokenimv1.OneTimePrekey) (*prekey.Bundle, error) {
	ik, err := ecc.DecodePoint(a.IdentityKey, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: identity key: %v", ErrIdentityMismatch, err)
	}
	spk := a.GetSignedPrekey()
	if spk == nil || len(spk.Signature) != 64 {
		return nil, fmt.Errorf("%w: @%s", ErrNoPrekey, a.Handle)
	}
	spkPub, err := ecc.DecodePoint(spk.PublicKey, 0)
	if err != nil {
		return nil, fmt.Errorf("signed prekey of @%s: %w", a.Handle, err)
	}
	var sig [64]byte
	copy(sig[:], spk.Signature)
	otkID, otkPub := optional.NewEmptyUint32(), ecc.ECPublicKeyable(nil)
	if otk != nil {
		if otkPub, err = ecc.DecodePoint(otk.PublicKey, 0); err != nil {
			return nil, fmt.Errorf("one-time prekey of @%s: %w", a.Handle, err)
		}
		otkID = optional.NewOptionalUint32(otk.Id)
	}
	return prekey.NewBundle(a.RegistrationId, DeviceID, otkID, spk.Id, otkPub, spkPub, sig, identity.NewKey(ik)), nil
}
