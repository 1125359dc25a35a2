package relay

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

type forgetOp struct {
	recipient string
	ids       [][IDSize]byte
}

// Forget deletes recipient's envelopes with the given ids, durably: another
// replica of the mailbox reported them acknowledged. Unknown ids, ids of
// other recipients and ids already deleted are skipped; the ids stay in the
// dedup index, so a late copy is not stored again.
func (s *Store) Forget(recipient string, ids [][]byte) error {
	if err := checkName(recipient); err != nil {
		return err
	}
	op := &forgetOp{recipient: recipient}
	for _, id := range ids {
		if len(id) != IDSize {
			return fmt.Errorf("%w: id of %d bytes", ErrInvalidEnvelope, len(id))
		}
		op.ids = append(op.ids, [IDSize]byte(id))
	}
	if len(op.ids) == 0 {
		return nil
	}
	req := &request{forget: op, done: make(chan error, 1)}
	if err := s.enqueue(req); err != nil {
		return err
	}
	return <-req.done
}

// forget deletes the committed envelopes of op (committer only).
func (b *builder) forget(op *forgetOp) error {
	for _, id := range op.ids {
		v, ok, err := b.s.get(dedupKey(id[:]))
		if err != nil || !ok {
			return err
		}
		cursor, name, ok := parseDedup(v)
		if !ok || name != op.recipient || cursor <= b.ackedTo[name] {
			continue // not this mailbox's, or an Ack in this batch deletes it
		}
		key := mailKey(name, cursor)
		val, ok, err := b.s.get(key)
		if err != nil {
			return err
		}
		if !ok || b.deleted[string(key)] {
			continue
		}
		if err := b.batch.Delete(key, nil); err != nil {
			return err
		}
		if err := b.unref(val); err != nil {
			return err
		}
		b.deleted[string(key)] = true
		b.forgot[name] = true
		b.dCount--
		b.dBytes -= int64(len(val))
	}
	return nil
}

// Since returns up to limit stored envelopes admitted at or after fromMs (by
// this store's clock), in admission order, starting after the envelope
// afterID (nil: from the start of fromMs), and whether more may follow.
// Anti-entropy uses it: a node that was down pulls what its peers admitted.
func (s *Store) Since(fromMs int64, afterID []byte, limit int) (envs []*tokenimv1.Envelope, more bool, err error) {
	if limit <= 0 || limit > MaxReadLimit {
		limit = MaxReadLimit
	}
	if err := s.acquire(); err != nil {
		return nil, false, err
	}
	defer s.dbMu.RUnlock()
	lower := admitKey(unixMs(fromMs), make([]byte, IDSize))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{tagAdmit + 1}})
	if err != nil {
		return nil, false, fmt.Errorf("relay: since: %w", err)
	}
	defer it.Close()
	skipping := afterID != nil
	for it.First(); it.Valid(); it.Next() {
		ids, err := indexIDs(it.Key(), it.Value())
		if err != nil {
			return nil, false, err
		}
		for _, id := range ids {
			if skipping {
				skipping = string(id) != string(afterID)
				continue
			}
			if len(envs) == limit {
				return envs, true, nil
			}
			env, ok, err := s.envelopeByID(id)
			if err != nil {
				return nil, false, err
			}
			if ok {
				envs = append(envs, env)
			}
		}
	}
	return envs, false, nil
}

// envelopeByID reads a stored envelope through the dedup index.
func (s *Store) envelopeByID(id []byte) (*tokenimv1.Envelope, bool, error) {
	v, ok, err := s.get(dedupKey(id))
	if err != nil || !ok {
		return nil, false, err
	}
	cursor, name, ok := parseDedup(v)
	if !ok {
		return nil, false, nil
	}
	val, ok, err := s.get(mailKey(name, cursor))
	if err != nil || !ok {
		return nil, false, err
	}
	env, err := decodeValue(val, s.bodyOf)
	if err == nil {
		err = s.withReaders(val, env)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: envelope %x: %v", ErrCorrupt, id, err)
	}
	return env, true, nil
}

// LastAdmittedMs is the admission time of the newest envelope id this store
// remembers (0 if none): where anti-entropy resumes after a restart.
func (s *Store) LastAdmittedMs() (int64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.dbMu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagAdmit}, UpperBound: []byte{tagAdmit + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, nil
	}
	k := it.Key()
	if len(k) < 9 {
		return 0, fmt.Errorf("%w: admission key %x", ErrCorrupt, k)
	}
	return int64(binary.BigEndian.Uint64(k[1:9])), nil
}
