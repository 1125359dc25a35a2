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
		if deleted == MaxSweepBatch {
			next = bytes.Clone(it.Key())
			break
		}
		gone, err := s.sweepable(it.Key())
		if err == nil && gone {
			err = b.Delete(dedupKey(it.Key()[9:]), nil)
			if err == nil {
				err = b.Delete(it.Key(), nil)
			}
			deleted++
		}
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

// sweepable reports whether the envelope behind an expired admission-index
// key is no longer stored (or its dedup entry is missing).
func (s *Store) sweepable(admit []byte) (bool, error) {
	if len(admit) != 9+IDSize {
		return false, fmt.Errorf("%w: admission key %x", ErrCorrupt, admit)
	}
	v, ok, err := s.get(dedupKey(admit[9:]))
	if err != nil || !ok {
		return !ok, err
	}
	cursor, name, valid := parseDedup(v)
	if !valid {
		return false, fmt.Errorf("%w: dedup entry %x", ErrCorrupt, admit[9:])
	}
	stored, err := s.has(mailKey(name, cursor))
	return !stored, err
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
