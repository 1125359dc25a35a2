// Package blob is a node's store of encrypted file chunks, named by the
// SHA-256 of their bytes (content addressing).
//
// Put refuses bytes that do not hash to their name, so a stored chunk is
// always the chunk asked for; Get re-checks the hash on the way out, so a
// chunk damaged on disk is reported (ErrCorrupt) instead of served. The
// node never sees a file's key: chunks are ciphertext.
package blob

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble"
)

// MaxChunk caps a stored chunk: 1 MiB of plaintext plus AEAD overhead.
const MaxChunk = 1<<20 + 64

var (
	// ErrNotFound: no chunk of that hash here.
	ErrNotFound = errors.New("blob: chunk not found")
	// ErrHashMismatch: the bytes do not hash to the name given.
	ErrHashMismatch = errors.New("blob: chunk bytes do not match their hash")
	// ErrTooLarge: over MaxChunk.
	ErrTooLarge = errors.New("blob: chunk too large")
	// ErrCorrupt: a stored chunk no longer matches its hash.
	ErrCorrupt = errors.New("blob: stored chunk is corrupt")
)

// Store is a Pebble database of chunks.
type Store struct {
	db *pebble.DB
	mu sync.Mutex // serializes read-modify-write of expiries (expiry.go)
}

// Open opens (or creates) a store in dir.
func Open(dir string) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func key(hash []byte) []byte { return append([]byte("c"), hash...) }

// Put stores data under hash, durably, if sha256(data) == hash, with no
// expiry.
func (s *Store) Put(hash, data []byte) error { return s.PutExpiring(hash, data, 0) }

// PutUnchecked overwrites a chunk without checking its hash. Only repair
// tools and tests that simulate a faulty disk use it.
func (s *Store) PutUnchecked(hash, data []byte) error {
	return s.db.Set(key(hash), data, pebble.Sync)
}

// Get returns the chunk of hash, checked against it.
func (s *Store) Get(hash []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key(hash))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	data := bytes.Clone(v)
	closer.Close()
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], hash) {
		return nil, ErrCorrupt
	}
	return data, nil
}

// Has reports whether a chunk of hash is stored.
func (s *Store) Has(hash []byte) (bool, error) {
	_, closer, err := s.db.Get(key(hash))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

// Delete removes a chunk (its expiry index stays; Expire drops it).
func (s *Store) Delete(hash []byte) error { return s.db.Delete(key(hash), pebble.Sync) }

type quiet struct{}

func (quiet) Infof(string, ...any)      {}
func (quiet) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// Hashes lists the hashes of the stored chunks.
func (s *Store) Hashes() ([][]byte, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("c"), UpperBound: []byte("d")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out [][]byte
	for it.First(); it.Valid(); it.Next() {
		out = append(out, bytes.Clone(it.Key()[1:]))
	}
	return out, nil
}
