package relay

import (
	"bytes"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
)

// Sweep deletes the dedup entries of envelopes admitted more than
// DedupWindow ago that are no longer stored, and returns how many. It runs
// at Open and every SweepInterval; entries of envelopes still stored are
// kept. Its deletions are not synced: after a crash they are redone.
func (s *Store) Sweep() (int, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.dbMu.RUnlock()
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	cutoff := unixMs(s.now().Add(-s.window).UnixMilli())
	upper := admitKey(cutoff, nil) // admitted before cutoff
	start, total := []byte{tagAdmit}, 0
	for start != nil {
		n, next, err := s.sweepBatch(start, upper)
		total += n
		if err != nil {
			return total, fmt.Errorf("relay: sweep: %w", err)
		}
		start = next
	}
	if total > 0 {
		s.log.Debug("relay swept dedup entries", "deleted", total)
	}
	return total, nil
}

// sweepBatch sweeps admission-index keys in [start, upper) until it has
// deleted MaxSweepBatch entries; next is where to go on (nil: done).
func (s *Store) sweepBatch(start, upper []byte) (deleted int, next []byte, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: upper})
	if err != nil {
		return 0, nil, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for it.First(); it.Valid(); it.Next() {
		if deleted >= MaxSweepBatch {
			next = bytes.Clone(it.Key())
			break
		}
		n, err := s.sweepEntry(b, it.Key(), it.Value())
		deleted += n
		if err != nil {
			it.Close()
			return 0, nil, err
		}
	}
	if err := it.Close(); err != nil {
		return 0, nil, err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, nil, err
	}
	return deleted, next, nil
}

// sweepEntry deletes the dedup entries of an expired admission-index
// entry's ids whose envelopes are no longer stored, and the index entry
// once none of its envelopes is.
func (s *Store) sweepEntry(b *pebble.Batch, key, value []byte) (deleted int, err error) {
	ids, err := indexIDs(key, value)
	if err != nil {
		return 0, err
	}
	kept := 0
	for _, id := range ids {
		v, ok, err := s.get(dedupKey(id))
		if err != nil {
			return deleted, err
		}
		if !ok {
			continue // swept before
		}
		cursor, name, valid := parseDedup(v)
		if !valid {
			return deleted, fmt.Errorf("%w: dedup entry %x", ErrCorrupt, id)
		}
		stored, err := s.has(mailKey(name, cursor))
		if err != nil {
			return deleted, err
		}
		if stored {
			kept++
			continue
		}
		if err := b.Delete(dedupKey(id), nil); err != nil {
			return deleted, err
		}
		deleted++
	}
	if kept == 0 {
		return deleted, b.Delete(key, nil)
	}
	return deleted, nil
}

// sweeper runs Sweep every SweepInterval until Close.
func (s *Store) sweeper() {
	defer s.bg.Done()
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if _, err := s.Sweep(); err != nil {
				s.log.Error("relay sweep failed", "err", err)
			}
		}
	}
}
