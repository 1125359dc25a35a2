package keystore

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
)

// The plaintext inside the age file is, in order:
//
//	magic            4 bytes  "TIKS"
//	version          1 byte   1
//	handle length    1 byte   1..255
//	handle           n bytes
//	account seed     32 bytes Ed25519 seed (RFC 8032 private key)
//	identity private 32 bytes Curve25519 private key
//	identity public  32 bytes Curve25519 public key
//	registration id  4 bytes  big endian
//	storage key      32 bytes
//
// Nothing may follow. The decoder recomputes both public keys and rejects
// a file whose stored keys disagree or whose Curve25519 key is not clamped.
var magic = [4]byte{'T', 'I', 'K', 'S'}

const (
	formatVersion = 1
	fixedLen      = len(magic) + 1 + 1 + ed25519.SeedSize + 32 + 32 + 4 + 32
	maxPlaintext  = fixedLen + MaxHandleLen
)

// encodeSecrets checks s and returns its plaintext encoding. The caller
// wipes the result when done with it.
func encodeSecrets(s *Secrets) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil secrets", ErrInvalid)
	}
	if err := checkHandle(s.Handle); err != nil {
		return nil, err
	}
	if len(s.AccountKey) != ed25519.PrivateKeySize ||
		!bytes.Equal(ed25519.NewKeyFromSeed(s.AccountKey.Seed()), s.AccountKey) {
		return nil, fmt.Errorf("%w: malformed account key", ErrInvalid)
	}
	priv, pub, ok := identityBytes(s.IdentityKeyPair)
	if !ok || !curveMatches(priv, pub) {
		return nil, fmt.Errorf("%w: malformed identity key pair", ErrInvalid)
	}
	b := make([]byte, 0, fixedLen+len(s.Handle))
	b = append(b, magic[:]...)
	b = append(b, formatVersion, byte(len(s.Handle)))
	b = append(b, s.Handle...)
	b = append(b, s.AccountKey.Seed()...)
	b = append(b, priv[:]...)
	b = append(b, pub[:]...)
	b = binary.BigEndian.AppendUint32(b, s.RegistrationID)
	b = append(b, s.StorageKey[:]...)
	clear(priv[:])
	return b, nil
}

// decodeSecrets parses a plaintext produced by encodeSecrets.
func decodeSecrets(b []byte) (*Secrets, error) {
	head := len(magic) + 2
	if len(b) < head || !bytes.Equal(b[:len(magic)], magic[:]) || b[len(magic)] != formatVersion {
		return nil, ErrCorrupt
	}
	n := int(b[len(magic)+1])
	if n == 0 || len(b) != fixedLen+n {
		return nil, ErrCorrupt
	}
	r := b[head:]
	take := func(k int) []byte { out := r[:k]; r = r[k:]; return out }
	s := &Secrets{Handle: string(take(n))}
	s.AccountKey = ed25519.NewKeyFromSeed(take(ed25519.SeedSize))
	var priv, pub [32]byte
	copy(priv[:], take(32))
	copy(pub[:], take(32))
	s.RegistrationID = binary.BigEndian.Uint32(take(4))
	copy(s.StorageKey[:], take(32))
	if !curveMatches(priv, pub) {
		s.Wipe()
		return nil, ErrCorrupt
	}
	s.IdentityKeyPair = identity.NewKeyPair(
		identity.NewKey(ecc.NewDjbECPublicKey(pub)),
		ecc.NewDjbECPrivateKey(priv),
	)
	clear(priv[:])
	return s, nil
}

// identityBytes extracts the raw Curve25519 keys of a libsignal key pair.
func identityBytes(kp *identity.KeyPair) (priv, pub [32]byte, ok bool) {
	if kp == nil || kp.PublicKey() == nil || kp.PublicKey().PublicKey() == nil || kp.PrivateKey() == nil {
		return priv, pub, false
	}
	if kp.PublicKey().PublicKey().Type() != ecc.DjbType || kp.PrivateKey().Type() != ecc.DjbType {
		return priv, pub, false
	}
	return kp.PrivateKey().Serialize(), kp.PublicKey().PublicKey().PublicKey(), true
}

// curveMatches reports whether priv is a clamped Curve25519 private key (as
// libsignal generates them; clamping makes the encoding canonical) and pub
// is its public key.
func curveMatches(priv, pub [32]byte) bool {
	if priv[0]&7 != 0 || priv[31]&0xc0 != 0x40 {
		return false
	}
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return false
	}
	return bytes.Equal(k.PublicKey().Bytes(), pub[:])
}
