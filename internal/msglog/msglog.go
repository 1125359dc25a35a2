// Package msglog is a node's append-only Merkle log of the envelopes it
// stored: an RFC 6962 tree (github.com/transparency-dev/merkle: compact
// ranges, SHA-256 leaf and node hashing, inclusion and consistency proofs)
// kept in the relay's Pebble database, appended in the same batch as the
// envelopes, so a stored envelope always has its leaf.
//
// Leaf data (what a third party recomputes from an envelope):
//
//	"tokenim/leaf/v1" 0x00 (16 bytes) ‖ envelope id (16 bytes)
//	‖ SHA-256(ciphertext) (32 bytes) ‖ commitment (32 bytes; zeros if none)
//
// The leaf hash is RFC 6962's SHA-256(0x00 ‖ leaf data). Sender and
// recipient are not in the leaf.
//
// Keys under the caller's prefix byte p:
//
//	p 'n' level(1) index(8 BE)   node hash of a perfect subtree, at level 0 (the
//	                             leaves) and levels above unstoredLevels
//	p 'i' envelope id            leaf index (8 BE) ‖ leaf data
//	p 'a' size(8 BE)             height of the block anchoring that size
//	p 's'                        size (8 BE)
//
// A node at levels 1 to unstoredLevels is recomputed, when a proof needs it,
// from the at most 2^unstoredLevels leaf hashes under it. A log of n leaves
// has about 2n nodes; it stores about 1.125n, so each leaf costs its write
// one key fewer (a 1,000-member group's post is 999 leaves), and a proof
// reads a few dozen more hashes.
package msglog

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// LeafDomain starts every leaf's data.
const LeafDomain = "tokenim/leaf/v1\x00"

// LeafSize is the size of a leaf's data.
const LeafSize = len(LeafDomain) + 16 + sha256.Size + sha256.Size

var (
	// ErrRange: an index or size beyond the log.
	ErrRange = errors.New("msglog: index or size out of range")
	// ErrCorrupt: a stored node is missing or malformed.
	ErrCorrupt = errors.New("msglog: corrupt log")
)

var hasher = rfc6962.DefaultHasher

// unstoredLevels: nodes at levels 1 to unstoredLevels are not stored.
const unstoredLevels = 3

func storedLevel(level uint) bool { return level == 0 || level > unstoredLevels }

// LeafData is the leaf of an envelope (see the package comment).
func LeafData(envelopeID, ciphertext, commitment []byte) []byte {
	sum := sha256.Sum256(ciphertext)
	return LeafDataFromHash(envelopeID, sum[:], commitment)
}

// LeafDataFromHash is LeafData from the ciphertext's SHA-256.
func LeafDataFromHash(envelopeID, ciphertextHash, commitment []byte) []byte {
	out := make([]byte, 0, LeafSize)
	out = append(out, LeafDomain...)
	out = append(out, padTo(envelopeID, 16)...)
	out = append(out, padTo(ciphertextHash, sha256.Size)...)
	return append(out, padTo(commitment, sha256.Size)...)
}

func padTo(b []byte, n int) []byte {
	if len(b) == n {
		return b
	}
	out := make([]byte, n)
	copy(out, b)
	return out
}

// LeafHash is the RFC 6962 hash of leaf data.
func LeafHash(data []byte) []byte { return hasher.HashLeaf(data) }

// Log is one node's log. Stage is for a single writer; everything else may
// be called concurrently and sees only committed leaves.
type Log struct {
	db     *pebble.DB
	prefix byte
	size   atomic.Uint64 // committed leaves

	mu      sync.Mutex // the writer's state
	rng     *compact.Range
	staged  uint64 // leaves staged in the open batch, not yet committed
	factory *compact.RangeFactory
}

// New opens the log kept in db under prefix.
func New(db *pebble.DB, prefix byte) (*Log, error) {
	l := &Log{db: db, prefix: prefix, factory: &compact.RangeFactory{Hash: hasher.HashChildren}}
	v, closer, err := db.Get(l.key('s'))
	size := uint64(0)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("msglog: open: %w", err)
	default:
		if len(v) != 8 {
			closer.Close()
			return nil, fmt.Errorf("%w: size of %d bytes", ErrCorrupt, len(v))
		}
		size = binary.BigEndian.Uint64(v)
		closer.Close()
	}
	rng, err := l.rangeAt(size)
	if err != nil {
		return nil, err
	}
	l.rng = rng
	l.size.Store(size)
	return l, nil
}

func (l *Log) key(kind byte, rest ...byte) []byte {
	return append([]byte{l.prefix, kind}, rest...)
}

func (l *Log) nodeKey(id compact.NodeID) []byte {
	k := l.key('n', byte(id.Level))
	return binary.BigEndian.AppendUint64(k, id.Index)
}

// Size is the number of committed leaves.
func (l *Log) Size() uint64 { return l.size.Load() }

// Stage appends leaves (leaf data) to the log inside b, which the caller
// commits, then calls Committed(true) — or Committed(false) if it did not.
// It returns the index of the first leaf. ids[i] (16 bytes) is the envelope
// id of leaves[i], indexed for IndexOf.
func (l *Log) Stage(b *pebble.Batch, ids, leaves [][]byte) (first uint64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first = l.rng.End()
	var werr error
	visit := func(id compact.NodeID, hash []byte) {
		if werr == nil && storedLevel(id.Level) {
			werr = b.Set(l.nodeKey(id), hash, nil)
		}
	}
	for i, leaf := range leaves {
		idx := l.rng.End()
		if err := l.rng.Append(hasher.HashLeaf(leaf), visit); err != nil {
			return 0, err
		}
		if werr != nil {
			return 0, werr
		}
		if err := b.Set(l.key('i', ids[i]...), append(binary.BigEndian.AppendUint64(nil, idx), leaf...), nil); err != nil {
			return 0, err
		}
	}
	l.staged += uint64(len(leaves))
	return first, b.Set(l.key('s'), binary.BigEndian.AppendUint64(nil, l.rng.End()), nil)
}

// Committed publishes the staged leaves (ok) or forgets them (the batch
// was not committed).
func (l *Log) Committed(ok bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.staged == 0 {
		return nil
	}
	l.staged = 0
	if ok {
		l.size.Store(l.rng.End())
		return nil
	}
	rng, err := l.rangeAt(l.size.Load())
	if err != nil {
		return err
	}
	l.rng = rng
	return nil
}

// Append stages leaves in a batch of its own and commits it (Sync).
func (l *Log) Append(ids, leaves [][]byte) (first uint64, err error) {
	b := l.db.NewBatch()
	defer b.Close()
	if first, err = l.Stage(b, ids, leaves); err == nil {
		err = b.Commit(pebble.Sync)
	}
	if cerr := l.Committed(err == nil); err == nil {
		err = cerr
	}
	return first, err
}

func (l *Log) node(id compact.NodeID) ([]byte, error) {
	if !storedLevel(id.Level) {
		return l.computeNode(id)
	}
	v, closer, err := l.db.Get(l.nodeKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: node %d/%d missing", ErrCorrupt, id.Level, id.Index)
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	if len(v) != sha256.Size {
		return nil, fmt.Errorf("%w: node %d/%d of %d bytes", ErrCorrupt, id.Level, id.Index, len(v))
	}
	return bytes.Clone(v), nil
}

// computeNode hashes an unstored node from the leaf hashes under it.
func (l *Log) computeNode(id compact.NodeID) ([]byte, error) {
	n := uint64(1) << id.Level
	lo := id.Index << id.Level
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: l.nodeKey(compact.NewNodeID(0, lo)),
		UpperBound: l.nodeKey(compact.NewNodeID(0, lo+n)),
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	hashes := make([][]byte, 0, n)
	for it.First(); it.Valid(); it.Next() {
		if len(it.Value()) != sha256.Size {
			return nil, fmt.Errorf("%w: leaf hash %d of %d bytes", ErrCorrupt, lo+uint64(len(hashes)), len(it.Value()))
		}
		hashes = append(hashes, bytes.Clone(it.Value()))
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if uint64(len(hashes)) != n { // keys are fixed-width: n keys are the n leaves
		return nil, fmt.Errorf("%w: node %d/%d: %d of its %d leaves", ErrCorrupt, id.Level, id.Index, len(hashes), n)
	}
	for len(hashes) > 1 {
		for i := range len(hashes) / 2 {
			hashes[i] = hasher.HashChildren(hashes[2*i], hashes[2*i+1])
		}
		hashes = hashes[:len(hashes)/2]
	}
	return hashes[0], nil
}

func (l *Log) nodes(ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := l.node(id)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// rangeAt rebuilds the compact range of the first size leaves.
func (l *Log) rangeAt(size uint64) (*compact.Range, error) {
	hashes, err := l.nodes(compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, err
	}
	return l.factory.NewRange(0, size, hashes)
}

// Root is the RFC 6962 root of the first size leaves (size ≤ Size).
func (l *Log) Root(size uint64) ([]byte, error) {
	if size > l.Size() {
		return nil, fmt.Errorf("%w: size %d, log has %d", ErrRange, size, l.Size())
	}
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	rng, err := l.rangeAt(size)
	if err != nil {
		return nil, err
	}
	return rng.GetRootHash(nil)
}

// Inclusion is the inclusion proof of leaf index in the tree of size
// leaves (index < size ≤ Size).
func (l *Log) Inclusion(index, size uint64) ([][]byte, error) {
	if size > l.Size() || index >= size {
		return nil, fmt.Errorf("%w: leaf %d in a tree of %d (log has %d)", ErrRange, index, size, l.Size())
	}
	n, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return l.rehash(n)
}

// Consistency is the proof that the tree of size1 leaves is a prefix of
// the tree of size2 (size1 ≤ size2 ≤ Size).
func (l *Log) Consistency(size1, size2 uint64) ([][]byte, error) {
	if size2 > l.Size() || size1 > size2 {
		return nil, fmt.Errorf("%w: sizes %d, %d (log has %d)", ErrRange, size1, size2, l.Size())
	}
	n, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return l.rehash(n)
}

func (l *Log) rehash(n proof.Nodes) ([][]byte, error) {
	hashes, err := l.nodes(n.IDs)
	if err != nil {
		return nil, err
	}
	return n.Rehash(hashes, hasher.HashChildren)
}

// RecordAnchor remembers that the first size leaves were anchored at
// height (the node learns it when its anchor commits). Not synced: a record
// lost in a crash only makes proofs name a later anchor (the chain keeps
// the latest).
func (l *Log) RecordAnchor(size uint64, height int64) error {
	return l.db.Set(l.key('a', binary.BigEndian.AppendUint64(nil, size)...), binary.BigEndian.AppendUint64(nil, uint64(height)), pebble.NoSync)
}

// FirstAnchor is the earliest recorded anchor that covers leaf index.
func (l *Log) FirstAnchor(index uint64) (size uint64, height int64, ok bool, err error) {
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: l.key('a', binary.BigEndian.AppendUint64(nil, index+1)...),
		UpperBound: l.key('a' + 1),
	})
	if err != nil {
		return 0, 0, false, err
	}
	defer it.Close()
	if !it.First() {
		return 0, 0, false, it.Error()
	}
	k, v := it.Key(), it.Value()
	if len(k) != 2+8 || len(v) != 8 {
		return 0, 0, false, fmt.Errorf("%w: anchor record", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(k[2:]), int64(binary.BigEndian.Uint64(v)), true, nil
}

// IndexOf is the leaf index of an envelope id, if the log has it
// (committed).
func (l *Log) IndexOf(envelopeID []byte) (uint64, bool, error) {
	idx, _, ok, err := l.LeafOf(envelopeID)
	return idx, ok, err
}

// LeafOf is the leaf index and data of an envelope id, if the log has it
// (committed).
func (l *Log) LeafOf(envelopeID []byte) (index uint64, data []byte, ok bool, err error) {
	v, closer, err := l.db.Get(l.key('i', envelopeID...))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	defer closer.Close()
	if len(v) < 8 {
		return 0, nil, false, fmt.Errorf("%w: index entry of %d bytes", ErrCorrupt, len(v))
	}
	index = binary.BigEndian.Uint64(v)
	return index, bytes.Clone(v[8:]), index < l.Size(), nil
}
