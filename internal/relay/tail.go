package relay

import (
	"cmp"
	"fmt"
	"slices"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// Tail caps: the newest envelopes of a subscribed mailbox are kept in memory
// so a live reader does not go to Pebble for what was just committed (a post
// to a 1,000-member group wakes 1,000 readers at once).
const (
	tailMaxEntries = 32
	tailMaxBytes   = 512 << 10
	tailBudget     = 64 << 20 // all tails together
)

// tail holds the newest committed envelopes of one subscribed mailbox
// (bytes: what its entries would deliver, for tailMaxBytes):
// every committed envelope with cursor > base is in entries, in cursor order.
// An invalid tail (after a deletion it did not follow, or before the first
// commit since Subscribe) serves nothing.
type tail struct {
	valid   bool
	base    uint64
	entries []tailEntry
	bytes   int
}

type tailEntry struct {
	cursor  uint64
	value   []byte     // the stored encoding; never modified
	body    []byte     // a stub's ciphertext (shared by the tails of a group post)
	readers *readerSet // a group post's readers
	// env is a group post decoded once for all its readers' streams (it
	// is never modified: concurrent marshaling of it is safe).
	env *tokenimv1.Envelope
}

// updateTails records a committed batch in the tails of subscribed
// mailboxes and wakes the subscribers of the mailboxes it added to
// (committer only, after the batch committed). The channels are signalled
// after subMu is released: the woken readers take it at once.
func (s *Store) updateTails(b *builder) {
	s.subMu.Lock()
	s.recordInTails(b)
	wake := s.wakeBuf[:0]
	for name := range b.notify {
		for ch := range s.subs[name] {
			wake = append(wake, ch)
		}
	}
	s.subMu.Unlock()
	for _, ch := range wake {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	clear(wake)
	s.wakeBuf = wake[:0]
}

// recordInTails is updateTails' change of the tails (subMu held).
func (s *Store) recordInTails(b *builder) {
	for name := range b.forgot {
		if t := s.tails[name]; t != nil {
			s.dropTail(t)
		}
	}
	for name, upTo := range b.ackedTo {
		if t := s.tails[name]; t != nil && !b.forgot[name] {
			s.trimTail(t, upTo)
		}
	}
	for name, adds := range b.added {
		t := s.tails[name]
		if t == nil || len(adds) == 0 {
			continue
		}
		if !t.valid {
			t.valid, t.base = true, adds[0].cursor-1
		}
		if up, ok := b.ackedTo[name]; ok {
			t.base = max(t.base, up) // acked in the same batch
		}
		for _, a := range adds {
			if a.cursor <= t.base {
				continue
			}
			if s.tailBytes+s.cost(a.value, a.body) > tailBudget {
				s.dropTail(t)
				break
			}
			te := tailEntry{cursor: a.cursor, value: a.value, body: a.body, readers: a.readers}
			if a.readers != nil {
				te.env, _ = decodeValue(a.value, nil) // a failure: each reader decodes, and reports it
			}
			t.entries = append(t.entries, te)
			t.bytes += len(a.value) + len(a.body)
			s.hold(a.value, a.body)
		}
		for t.valid && (len(t.entries) > tailMaxEntries || t.bytes > tailMaxBytes) {
			s.trimTail(t, t.entries[0].cursor)
		}
	}
}

// startTail makes a subscribed mailbox's invalid tail valid from base: a
// Read found nothing in Pebble after base. A mailbox no commit has touched
// since Subscribe is then read from memory too (a member's own mailbox,
// while its groups' posts wake its stream). A commit that made later
// cursors visible before this either validated the tail already (it runs
// after the commit) or comes after it and adds them.
func (s *Store) startTail(name string, base uint64) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if t := s.tails[name]; t != nil && !t.valid {
		t.valid, t.base = true, base
	}
}

// trimTail forgets entries with cursor <= upTo (they were acknowledged, or
// the tail is full); base moves up so those cursors are read from Pebble.
func (s *Store) trimTail(t *tail, upTo uint64) {
	if !t.valid {
		return
	}
	i := 0
	for i < len(t.entries) && t.entries[i].cursor <= upTo {
		e := t.entries[i]
		t.bytes -= len(e.value) + len(e.body)
		s.release(e.value, e.body)
		i++
	}
	t.entries = t.entries[i:]
	t.base = max(t.base, upTo)
}

// from is the index of t's first entry with cursor >= c.
func (t *tail) from(c uint64) int {
	i, _ := slices.BinarySearchFunc(t.entries, c, func(e tailEntry, c uint64) int { return cmp.Compare(e.cursor, c) })
	return i
}

func (s *Store) dropTail(t *tail) {
	for _, e := range t.entries {
		s.release(e.value, e.body)
	}
	*t = tail{}
}

// Memory of all tails (s.tailBytes): entries' values, and each shared body
// once however many tails hold it (a group post's body is one slice).

// cost is what holding an entry would add to s.tailBytes.
func (s *Store) cost(value, body []byte) int {
	if len(body) > 0 && s.tailBodies[&body[0]] > 0 {
		return len(value)
	}
	return len(value) + len(body)
}

func (s *Store) hold(value, body []byte) {
	s.tailBytes += len(value)
	if len(body) > 0 {
		p := &body[0]
		if s.tailBodies[p] == 0 {
			s.tailBytes += len(body)
		}
		s.tailBodies[p]++
	}
}

func (s *Store) release(value, body []byte) {
	s.tailBytes -= len(value)
	if len(body) > 0 {
		p := &body[0]
		if s.tailBodies[p]--; s.tailBodies[p] <= 0 {
			delete(s.tailBodies, p)
			s.tailBytes -= len(body)
		}
	}
}

// readTail answers Read from recipient's tail when it covers after; ok is
// false when Pebble must be read.
func (s *Store) readTail(recipient string, after uint64, limit int) (out []*tokenimv1.Delivery, ok bool, err error) {
	s.subMu.RLock()
	t := s.tails[recipient]
	if t == nil || !t.valid || after < t.base {
		s.subMu.RUnlock()
		return nil, false, nil
	}
	i := t.from(after + 1)
	end := len(t.entries)
	if limit > 0 {
		end = min(end, i+limit)
	}
	pick := slices.Clone(t.entries[i:end])
	s.subMu.RUnlock()
	out = make([]*tokenimv1.Delivery, 0, len(pick))
	for _, e := range pick {
		env, err := decodeValue(e.value, func([32]byte) ([]byte, error) { return e.body, nil })
		if err != nil {
			return nil, true, fmt.Errorf("%w: envelope %q/%d: %v", ErrCorrupt, recipient, e.cursor, err)
		}
		out = append(out, &tokenimv1.Delivery{Cursor: e.cursor, Envelope: env})
	}
	return out, true, nil
}

// tailRange returns the committed envelopes of recipient with cursor in
// [lo, hi] from its tail, if the tail holds all of them (ok false: read
// Pebble).
func (s *Store) tailRange(recipient string, lo, hi uint64) (out []tailEntry, ok bool) {
	s.subMu.RLock()
	defer s.subMu.RUnlock()
	t := s.tails[recipient]
	if t == nil || !t.valid || lo <= t.base {
		return nil, false
	}
	return slices.Clone(t.entries[t.from(lo):t.from(hi+1)]), true
}
