package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"golang.org/x/crypto/chacha20poly1305"
)

// File encryption core (docs/files.md): pure functions over readers,
// writers and callbacks; file.go moves the chunks over the network.

// manifestIndex is the chunk index the manifest is sealed under; file
// chunks use 0 … MaxFileSize/ChunkSize, so it never collides.
const manifestIndex = 1 << 32

// maxManifest caps a manifest's encoding: a 2 GiB file has 2,048 hashes
// of 34 bytes each.
const maxManifest = 128 << 10

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

// sealedChunk is one encrypted chunk and its name, SHA-256(Data).
type sealedChunk struct {
	Index uint64
	Hash  []byte
	Data  []byte
}

func sealIndexed(key []byte, index uint64, pt []byte) (sealedChunk, error) {
	ct, err := sealChunk(key, index, pt)
	if err != nil {
		return sealedChunk{}, err
	}
	sum := sha256.Sum256(ct)
	return sealedChunk{Index: index, Hash: sum[:], Data: ct}, nil
}

// sealFile reads exactly size bytes from r, seals them in ChunkSize pieces
// under key and hands each sealed chunk to emit in order (emit may keep
// it). Only one plaintext chunk is held at a time. It returns the manifest
// without a name.
func sealFile(r io.Reader, size int64, key []byte, emit func(sealedChunk) error) (*tokenimv1.FileManifest, error) {
	if size < 0 || size > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrFileTooLarge, size, int64(MaxFileSize))
	}
	m := &tokenimv1.FileManifest{Size: uint64(size), ChunkSize: ChunkSize}
	buf := make([]byte, ChunkSize)
	for index := uint64(0); int64(index)*ChunkSize < size; index++ {
		n := min(size-int64(index)*ChunkSize, ChunkSize)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return nil, fmt.Errorf("read chunk %d (did the file change while sending?): %w", index, err)
		}
		sc, err := sealIndexed(key, index, buf[:n])
		if err != nil {
			return nil, err
		}
		if err := emit(sc); err != nil {
			return nil, err
		}
		m.ChunkHashes = append(m.ChunkHashes, sc.Hash)
	}
	return m, nil
}

// sealManifest seals a manifest as the chunk at manifestIndex.
func sealManifest(key []byte, m *tokenimv1.FileManifest) (sealedChunk, error) {
	return sealIndexed(key, manifestIndex, codec.MustMarshal(m))
}

// openManifest checks a manifest chunk against the File body that named
// it, decrypts and validates it.
func openManifest(f *tokenimv1.File, data []byte) (*tokenimv1.FileManifest, error) {
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], f.ManifestHash) {
		return nil, fmt.Errorf("%w: manifest does not match its hash", ErrFileCorrupt)
	}
	pt, err := openChunk(f.Key, manifestIndex, data)
	if err != nil {
		return nil, err
	}
	var m tokenimv1.FileManifest
	if err := codec.Unmarshal(pt, &m, maxManifest); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrFileCorrupt, err)
	}
	if m.Size != f.Size || m.Size > MaxFileSize || m.ChunkSize != ChunkSize ||
		uint64(len(m.ChunkHashes)) != (m.Size+ChunkSize-1)/ChunkSize {
		return nil, fmt.Errorf("%w: manifest (size %d, chunk size %d, %d chunks) is inconsistent", ErrFileCorrupt, m.Size, m.ChunkSize, len(m.ChunkHashes))
	}
	for i, h := range m.ChunkHashes {
		if len(h) != sha256.Size {
			return nil, fmt.Errorf("%w: manifest: chunk %d hash", ErrFileCorrupt, i)
		}
	}
	return &m, nil
}

// openFileChunk checks chunk index of m against its hash (before any
// decryption), decrypts it and checks its length.
func openFileChunk(key []byte, m *tokenimv1.FileManifest, index int, data []byte) ([]byte, error) {
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], m.ChunkHashes[index]) {
		return nil, fmt.Errorf("%w: chunk %d does not match its hash", ErrFileCorrupt, index)
	}
	pt, err := openChunk(key, uint64(index), data)
	if err != nil {
		return nil, err
	}
	want := uint64(ChunkSize)
	if index == len(m.ChunkHashes)-1 {
		want = m.Size - uint64(index)*ChunkSize
	}
	if uint64(len(pt)) != want {
		return nil, fmt.Errorf("%w: chunk %d has %d bytes, want %d", ErrFileCorrupt, index, len(pt), want)
	}
	return pt, nil
}

// fileName makes a sender-chosen name safe to show and to create in a
// directory: its last path element (either slash), control characters
// replaced, no leading dots (no hidden or dot files), at most 255 bytes;
// "file" if nothing is left.
func fileName(name string) string {
	name = strings.TrimLeft(path.Base(strings.ReplaceAll(name, "\\", "/")), "./ ")
	name = strings.Map(func(r rune) rune {
		if unicode.In(r, unicode.Cc, unicode.Cf) || r == utf8.RuneError { // Cf: no bidi tricks
			return '_'
		}
		return r
	}, name)
	for len(name) > 255 {
		_, n := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-n]
	}
	if strings.TrimSpace(name) == "" {
		return "file"
	}
	return name
}
