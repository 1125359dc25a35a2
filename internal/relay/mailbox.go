package relay

import (
	"fmt"
	"math"

	"github.com/cockroachdb/pebble"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// Read returns up to limit deliveries of recipient's mailbox with cursor >
// after, in cursor order. A group mailbox's posts come with their readers
// (for a peer; a member reads with ReadGroup). A limit <= 0 or > MaxReadLimit means MaxReadLimit.
func (s *Store) Read(recipient string, after uint64, limit int) ([]*tokenimv1.Delivery, error) {
	if err := checkName(recipient); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxReadLimit {
		limit = MaxReadLimit
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.dbMu.RUnlock()
	if after == math.MaxUint64 {
		return nil, nil
	}
	if IsGroupMailbox(recipient) { // a peer's read: with each post's readers
		return s.readDB(recipient, after, limit)
	}
	if out, ok, err := s.readTail(recipient, after, limit); ok {
		return out, err
	}
	out, err := s.readDB(recipient, after, limit)
	if err == nil && len(out) < limit {
		last := after
		if len(out) > 0 {
			last = out[len(out)-1].Cursor
		}
		s.startTail(recipient, last)
	}
	return out, err
}

// readDB is Read from Pebble (the caller holds dbMu shared).
func (s *Store) readDB(recipient string, after uint64, limit int) ([]*tokenimv1.Delivery, error) {
	lo, hi := mailBounds(recipient, after+1, math.MaxUint64)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("relay: read: %w", err)
	}
	var out []*tokenimv1.Delivery
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		cursor := mailCursor(it.Key())
		env, err := decodeValue(it.Value(), s.bodyOf)
		if err == nil {
			err = s.withReaders(it.Value(), env)
		}
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("%w: envelope %q/%d: %v", ErrCorrupt, recipient, cursor, err)
		}
		out = append(out, &tokenimv1.Delivery{Cursor: cursor, Envelope: env})
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("relay: read: %w", err)
	}
	return out, nil
}

// ack deletes recipient's envelopes with cursor <= upTo: the committed ones
// and those set earlier in this batch, skipping what an earlier Ack in this
// batch deleted already.
//
// The scan starts after what earlier commits acknowledged (Store.acked):
// from cursor 1 every Ack would step over the tombstones of all earlier
// ones.
func (b *builder) ack(name string, upTo uint64) error {
	lo := b.s.acked[name] + 1
	if prev, ok := b.ackedTo[name]; ok {
		if upTo <= prev {
			return nil
		}
		lo = max(lo, prev+1)
	}
	b.ackedTo[name] = upTo
	last, err := b.lastCursor(name)
	if err != nil {
		return err
	}
	// Everything up to here is gone once the batch commits; envelopes set
	// later in the batch get cursors above it, even if upTo is beyond.
	b.ackFloor[name] = min(upTo, last)
	if upTo < lo {
		return b.ackAdded(name, upTo)
	}
	if entries, ok := b.s.tailRange(name, lo, upTo); ok {
		// A live reader acknowledges what its tail holds: no Pebble read.
		for _, e := range entries {
			key := mailKey(name, e.cursor)
			if b.deleted[string(key)] {
				continue
			}
			if err := b.batch.Delete(key, nil); err != nil {
				return err
			}
			if err := b.unref(e.value); err != nil {
				return err
			}
			b.dCount--
			b.dBytes -= int64(len(e.value))
		}
		return b.ackAdded(name, upTo)
	}
	lower, upper := mailBounds(name, lo, upTo)
	it, err := b.s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if b.deleted[string(it.Key())] {
			continue // Forget deleted it earlier in this batch
		}
		if err := b.batch.Delete(it.Key(), nil); err != nil {
			it.Close()
			return err
		}
		if err := b.unref(it.Value()); err != nil {
			it.Close()
			return err
		}
		b.dCount--
		b.dBytes -= int64(len(it.Value()))
	}
	if err := it.Close(); err != nil {
		return err
	}
	return b.ackAdded(name, upTo)
}

// ackAdded deletes the envelopes set in this batch with cursor <= upTo.
func (b *builder) ackAdded(name string, upTo uint64) error {
	keep := b.added[name][:0]
	for _, a := range b.added[name] {
		if a.cursor > upTo {
			keep = append(keep, a)
			continue
		}
		if err := b.batch.Delete(mailKey(name, a.cursor), nil); err != nil {
			return err
		}
		if err := b.unref(a.value); err != nil {
			return err
		}
		b.dCount--
		b.dBytes -= int64(len(a.value))
	}
	b.added[name] = keep
	return nil
}

// IDs returns the envelope ids of recipient's mailbox with cursor <= upTo,
// in cursor order, without reading their ciphertexts (an Ack tells the
// mailbox's other replicas which ids went).
func (s *Store) IDs(recipient string, upTo uint64) ([][]byte, error) {
	if err := checkName(recipient); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.dbMu.RUnlock()
	if upTo == 0 {
		return nil, nil
	}
	lo, hi := mailBounds(recipient, 1, upTo)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("relay: ids: %w", err)
	}
	var out [][]byte
	for it.First(); it.Valid(); it.Next() {
		id, err := valueID(it.Value())
		if err != nil {
			it.Close()
			return nil, err
		}
		out = append(out, id)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("relay: ids: %w", err)
	}
	return out, nil
}
