package relay

import (
	"fmt"
	"hash/maphash"

	"github.com/cockroachdb/pebble"
)

// Bloom filter over the dedup index. Nearly every envelope id a node sees
// is new, and a Pebble lookup per id was the largest cost of a commit; the
// filter answers "certainly new" from memory. It only ever gains ids (a
// swept id stays in it and costs a Pebble lookup, as before), and it is
// rebuilt from the index at Open. Its hash is seeded per process, so ids
// chosen to collide cost their sender nothing but lookups.
const (
	filterBits   = 1 << 27 // 16 MiB: ~0.3% false positives at 10 million ids
	filterHashes = 5
)

type idFilter struct {
	seed maphash.Seed
	bits []uint64
}

func newIDFilter() *idFilter {
	return &idFilter{seed: maphash.MakeSeed(), bits: make([]uint64, filterBits/64)}
}

func (f *idFilter) positions(id []byte, fn func(bit uint64)) {
	h := maphash.Bytes(f.seed, id)
	h1, h2 := h&0xffffffff, h>>32|1
	for i := uint64(0); i < filterHashes; i++ {
		fn((h1 + i*h2) % filterBits)
	}
}

func (f *idFilter) add(id []byte) {
	f.positions(id, func(b uint64) { f.bits[b/64] |= 1 << (b % 64) })
}

// mayContain is false only for ids never added.
func (f *idFilter) mayContain(id []byte) bool {
	in := true
	f.positions(id, func(b uint64) {
		if f.bits[b/64]&(1<<(b%64)) == 0 {
			in = false
		}
	})
	return in
}

// loadFilter adds every id of the dedup index (Open, before the committer
// starts).
func (s *Store) loadFilter() error {
	s.filter = newIDFilter()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagDedup}, UpperBound: []byte{tagDedup + 1}})
	if err != nil {
		return fmt.Errorf("relay: open: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		s.filter.add(it.Key()[1:])
	}
	return it.Error()
}
