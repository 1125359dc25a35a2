package signalstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
)

// GetIdentityKeyPair returns the local identity key pair given to Open.
func (s *Store) GetIdentityKeyPair() *identity.KeyPair {
	return s.local
}

// GetLocalRegistrationID returns the registration id given to Open.
func (s *Store) GetLocalRegistrationID() uint32 {
	return s.regID
}

// SaveIdentity records identityKey as addr's identity, replacing any
// previous one. libsignal calls it after every successful session build,
// encrypt and decrypt; the client calls it to accept a changed key.
func (s *Store) SaveIdentity(_ context.Context, addr *protocol.SignalAddress, identityKey *identity.Key) error {
	if addr == nil || identityKey == nil || identityKey.PublicKey() == nil {
		return fmt.Errorf("%w: nil address or identity key", ErrInvalid)
	}
	// libsignal saves the peer's identity after every encrypt and decrypt;
	// the same key again writes nothing (a commit is two fsyncs on the
	// path of every message).
	k, v := s.addrKey(addr), identityKey.Serialize()
	if cur, ok, err := s.getOne(bucketIdentity, k); err == nil && ok && bytes.Equal(cur, v) {
		return nil
	}
	return s.putOne(bucketIdentity, k, v)
}

// IsTrustedIdentity reports whether identityKey may be used for addr: true
// when no identity is recorded for addr yet (trust on first use) or when it
// equals the recorded one.
func (s *Store) IsTrustedIdentity(ctx context.Context, addr *protocol.SignalAddress, identityKey *identity.Key) (bool, error) {
	if identityKey == nil || identityKey.PublicKey() == nil {
		return false, fmt.Errorf("%w: nil identity key", ErrInvalid)
	}
	recorded, ok, err := s.RemoteIdentity(ctx, addr)
	if err != nil || !ok {
		return err == nil, err
	}
	return bytes.Equal(recorded.Serialize(), identityKey.Serialize()), nil
}

// RemoteIdentity returns the identity recorded for addr, and false if there
// is none. The client compares it with the key the chain publishes for the
// peer to detect a change.
func (s *Store) RemoteIdentity(_ context.Context, addr *protocol.SignalAddress) (*identity.Key, bool, error) {
	if addr == nil {
		return nil, false, fmt.Errorf("%w: nil address", ErrInvalid)
	}
	v, ok, err := s.getOne(bucketIdentity, s.addrKey(addr))
	if err != nil || !ok {
		return nil, false, err
	}
	if len(v) != ecc.KeySize || v[0] != ecc.DjbType {
		return nil, false, ErrCorrupt
	}
	return identity.NewKey(ecc.NewDjbECPublicKey([32]byte(v[1:]))), true, nil
}

// addrKey is the blinded record key of an address: a MAC of its name
// followed by its device id, so one name's devices share a prefix.
func (s *Store) addrKey(addr *protocol.SignalAddress) []byte {
	return binary.BigEndian.AppendUint32(s.blind("addr", addr.Name()), addr.DeviceID())
}
