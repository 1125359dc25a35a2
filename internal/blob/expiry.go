package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// Retention. A chunk stored for a conversation whose policy has a
// retention carries an expiry; Expire deletes it then. Chunks are named by
// content, so one chunk may be stored for several conversations: it keeps
// the latest expiry, and none (kept) if any store asked for none.
//
//	x<hash>              expiry, Unix ms (8 bytes BE); absent: kept
//	e<expiry><hash>      index for Expire
func expiryKey(hash []byte) []byte { return append([]byte("x"), hash...) }

func indexKey(ms int64, hash []byte) []byte {
	return append(binary.BigEndian.AppendUint64([]byte("e"), uint64(ms)), hash...)
}

// PutExpiring stores data under hash like Put, with an expiry (Unix ms; 0:
// kept until deleted). See the retention rule above.
func (s *Store) PutExpiring(hash, data []byte, expiresMs int64) error {
	if len(data) > MaxChunk {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	if sum := sha256.Sum256(data); len(hash) != sha256.Size || !bytes.Equal(sum[:], hash) {
		return ErrHashMismatch
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	had, err := s.Has(hash)
	if err != nil {
		return err
	}
	old, err := s.Expiry(hash)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	b.Set(key(hash), data, nil)
	next := expiresMs
	switch {
	case had && old == 0:
		next = 0 // kept already
	case had && expiresMs != 0:
		next = max(old, expiresMs)
	}
	if old != 0 && old != next {
		b.Delete(indexKey(old, hash), nil)
	}
	if next == 0 {
		b.Delete(expiryKey(hash), nil)
	} else {
		b.Set(expiryKey(hash), binary.BigEndian.AppendUint64(nil, uint64(next)), nil)
		b.Set(indexKey(next, hash), nil, nil)
	}
	return b.Commit(pebble.Sync)
}

// Expiry is a stored chunk's expiry (0: kept, or not stored).
func (s *Store) Expiry(hash []byte) (int64, error) {
	v, closer, err := s.db.Get(expiryKey(hash))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: expiry of %x", ErrCorrupt, hash)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// Expire deletes every chunk whose expiry is at or before nowMs and
// returns how many it deleted.
func (s *Store) Expire(nowMs int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("e"), UpperBound: indexKey(nowMs+1, nil)})
	if err != nil {
		return 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		hash := bytes.Clone(k[1+8:])
		b.Delete(bytes.Clone(k), nil)
		b.Delete(key(hash), nil)
		b.Delete(expiryKey(hash), nil)
		n++
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	return n, b.Commit(pebble.Sync)
}
