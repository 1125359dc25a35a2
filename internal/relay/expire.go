package relay

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// Expire deletes every stored envelope whose retention ended at or before
// nowMs (Envelope.expires_at_ms), delivered or not, and drops the index
// entries; it returns how many envelopes it deleted. One call handles about
// MaxSweepBatch envelopes (whole index entries); the sweeper calls it again
// every second. The ids stay in the dedup index, so a late replica copy is
// not stored again.
func (s *Store) Expire(nowMs int64) (int, error) {
	byName, keys, err := s.expired(nowMs)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	before := s.Stats().Envelopes
	for name, ids := range byName {
		if err := s.Forget(name, ids); err != nil {
			return 0, err
		}
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	b := s.db.NewBatch()
	for _, k := range keys {
		b.Delete(k, nil)
	}
	err = b.Commit(pebble.NoSync) // a lost index entry only delays nothing: the envelope is gone
	b.Close()
	s.dbMu.RUnlock()
	if err != nil {
		return 0, fmt.Errorf("relay: expire: %w", err)
	}
	return int(before - s.Stats().Envelopes), nil
}

// expired lists the ids due by nowMs, per recipient, and their index keys.
func (s *Store) expired(nowMs int64) (map[string][][]byte, [][]byte, error) {
	if err := s.acquire(); err != nil {
		return nil, nil, err
	}
	defer s.dbMu.RUnlock()
	upper := expiryKey(unixMs(nowMs)+1, nil)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagExpiry}, UpperBound: upper})
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()
	byName := map[string][][]byte{}
	var keys [][]byte
	n := 0 // ids listed: an entry holds a batch's worth, up to MaxCommitEnvelopes
	for it.First(); it.Valid() && n < MaxSweepBatch; it.Next() {
		ids, err := indexIDs(it.Key(), it.Value())
		if err != nil {
			return nil, nil, err
		}
		n += len(ids)
		keys = append(keys, bytes.Clone(it.Key()))
		for _, id := range ids {
			v, ok, err := s.get(dedupKey(id))
			if err != nil {
				return nil, nil, err
			}
			if _, name, ok2 := parseDedup(v); ok && ok2 {
				byName[name] = append(byName[name], id)
			}
		}
	}
	return byName, keys, nil
}
