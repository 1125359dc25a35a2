package signalstore

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// A sealed value is
//
//	version (1 byte, 1) || nonce (24 bytes) || XChaCha20-Poly1305 ciphertext
//
// with additional data
//
//	version || len(bucket) (2 bytes, big endian) || bucket || key
//
// The length prefix keeps (bucket, key) pairs from aliasing each other.
const sealVersion = 1

func additionalData(bucket string, key []byte) []byte {
	ad := make([]byte, 0, 3+len(bucket)+len(key))
	ad = append(ad, sealVersion)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(bucket)))
	ad = append(ad, bucket...)
	return append(ad, key...)
}

func (s *Store) seal(bucket string, key, plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("signalstore: %w", err)
	}
	return s.aead.Seal(out, out[1:], plaintext, additionalData(bucket, key)), nil
}

// open authenticates and decrypts a sealed value. Every failure is
// ErrCorrupt.
func (s *Store) open(bucket string, key, sealed []byte) ([]byte, error) {
	head := 1 + chacha20poly1305.NonceSizeX
	if len(sealed) < head+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrCorrupt
	}
	plain, err := s.aead.Open(nil, sealed[1:head], sealed[head:], additionalData(bucket, key))
	if err != nil {
		return nil, ErrCorrupt
	}
	return plain, nil
}

// blind returns HMAC-SHA256 under the index key of a tag and the given
// parts, each length-prefixed. It hides peer names in record keys.
func (s *Store) blind(tag string, parts ...string) []byte {
	m := hmac.New(sha256.New, s.indexKey)
	var n [4]byte
	for _, p := range append([]string{tag}, parts...) {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}
