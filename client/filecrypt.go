package client

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// File limits and layout (docs/files.md).
const (
	// ChunkSize is the plaintext size of every chunk but the last.
	ChunkSize = 1 << 20
	// MaxFileSize caps a file.
	MaxFileSize = 2 << 30
	// manifestIndex is the chunk index the manifest is sealed under; file
	// chunks use 0 … (size/ChunkSize), so it never collides.
	manifestIndex = 1 << 32
)

// ErrFileCorrupt: a chunk or the manifest failed to decrypt or verify.
var ErrFileCorrupt = errors.New("file chunk failed verification")

// chunkAD binds a chunk to its position (no swapping or truncation).
func chunkAD(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("tokenim/file/v1\x00"), index)
}

// chunkNonce is the index as a 24-byte big-endian number: unique per chunk
// under a key that is fresh for every file.
func chunkNonce(index uint64) []byte {
	n := make([]byte, chacha20poly1305.NonceSizeX)
	binary.BigEndian.PutUint64(n[len(n)-8:], index)
	return n
}

// sealChunk encrypts chunk index of a file with XChaCha20-Poly1305.
func sealChunk(key []byte, index uint64, plaintext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, chunkNonce(index), plaintext, chunkAD(index)), nil
}

// openChunk decrypts and authenticates chunk index.
func openChunk(key []byte, index uint64, ciphertext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFileCorrupt, err)
	}
	pt, err := aead.Open(nil, chunkNonce(index), ciphertext, chunkAD(index))
	if err != nil {
		return nil, fmt.Errorf("%w: chunk %d", ErrFileCorrupt, index)
	}
	return pt, nil
}
