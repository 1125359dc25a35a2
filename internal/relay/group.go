package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/proto"
)

// Group mailboxes. A group post (a GROUP envelope without a recipient) is
// stored once, in its group's mailbox, instead of as a copy per member:
// one entry, one dedup entry, one log leaf, whatever the group's size. Its
// readers (the members the policy let read it, decided by the entry node
// at admission) are stored beside it, once per distinct list, as a shared
// body (body.go) the entry refers to:
//
//	'm' len "#group" cursor   -> 0x01 | sha256(readers) | Envelope (readers cleared)
//	'b' sha256(readers)       -> the reader list (each name behind a one-byte length)
//	'a' len "#group" len name -> name's read position in the mailbox (uint64)
//
// A member reads the mailbox with ReadGroup, which skips the posts it is
// not a reader of, and acknowledges with AckGroup, which only moves its
// position. Prune deletes the oldest posts every reader has passed (a
// reader that is no longer a member does not hold a post back); Expire
// deletes a post when its retention ends, read or not.

// GroupMailboxPrefix starts the mailbox name of a group; handles never
// contain it.
const GroupMailboxPrefix = "#"

// GroupMailbox returns the mailbox name of group's posts.
func GroupMailbox(group string) string { return GroupMailboxPrefix + group }

// IsGroupMailbox reports whether name is a group's mailbox.
func IsGroupMailbox(name string) bool { return strings.HasPrefix(name, GroupMailboxPrefix) }

// IsGroupPost reports whether e is a group post: stored once in its
// group's mailbox for its readers.
func IsGroupPost(e *tokenimv1.Envelope) bool {
	return e.To == "" && e.Group != "" && e.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP
}

const (
	postMark    byte = 0x01
	tagPosition byte = 'a'
	// readerSetCacheCap bounds the cache of parsed reader lists.
	readerSetCacheCap = 1024
	// MaxGroupScan caps the posts one ReadGroup looks at: a read that
	// moved fewer cursors than this, with fewer deliveries than its limit,
	// reached the end of the mailbox.
	MaxGroupScan = 4 * MaxReadLimit
)

func isPost(v []byte) bool { return len(v) > 0 && v[0] == postMark }

func positionKey(mailbox, member string) []byte {
	k := nameKey(tagPosition, mailbox, 1+len(member))
	k = append(k, byte(len(member)))
	return append(k, member...)
}

// readerSet is a post's sorted reader list.
type readerSet struct{ names []string }

func (r *readerSet) has(name string) bool {
	_, ok := slices.BinarySearch(r.names, name)
	return ok
}

// encodeReaders sorts and dedups names and encodes them.
func encodeReaders(names []string) ([]byte, []string) {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	n := 0
	for _, s := range sorted {
		n += 1 + len(s)
	}
	out := make([]byte, 0, n)
	for _, s := range sorted {
		out = append(out, byte(len(s)))
		out = append(out, s...)
	}
	return out, sorted
}

func parseReaders(b []byte) (*readerSet, error) {
	var names []string
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || 1+n > len(b) {
			return nil, fmt.Errorf("%w: reader list", ErrCorrupt)
		}
		names = append(names, string(b[1:1+n]))
		b = b[1+n:]
	}
	if !slices.IsSorted(names) {
		return nil, fmt.Errorf("%w: reader list not sorted", ErrCorrupt)
	}
	return &readerSet{names: names}, nil
}

// readerSets caches parsed reader lists by hash.
type readerSets struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*readerSet
}

func (c *readerSets) get(h [sha256.Size]byte) *readerSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[h]
}

func (c *readerSets) put(h [sha256.Size]byte, r *readerSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= readerSetCacheCap {
		c.m = map[[sha256.Size]byte]*readerSet{}
	}
	c.m[h] = r
}

// postReaders returns the readers of a stored post (the caller holds dbMu
// shared, or is the committer).
func (s *Store) postReaders(v []byte) (*readerSet, error) {
	if len(v) < stubHeader {
		return nil, fmt.Errorf("%w: post of %d bytes", ErrCorrupt, len(v))
	}
	h := [sha256.Size]byte(v[1:stubHeader])
	if r := s.readers.get(h); r != nil {
		return r, nil
	}
	b, err := s.bodyOf(h)
	if err != nil {
		return nil, err
	}
	r, err := parseReaders(b)
	if err != nil {
		return nil, err
	}
	s.readers.put(h, r)
	return r, nil
}

// encodePost fills enc for group post e: the entry refers to its readers.
func (s *Store) encodePost(e *tokenimv1.Envelope, enc *encoded) error {
	blob, sorted := encodeReaders(e.Readers)
	h := sha256.Sum256(blob)
	c := bareCopy(e)
	c.Ciphertext = e.Ciphertext
	out := make([]byte, 0, stubHeader+marshalOpts.Size(c))
	out = append(out, postMark)
	out = append(out, h[:]...)
	out, err := marshalOpts.MarshalAppend(out, c)
	if err != nil {
		return err
	}
	enc.value, enc.to, enc.readersHash = out, GroupMailbox(e.Group), h
	enc.readers = blob
	rs := s.readers.get(h)
	if rs == nil {
		rs = &readerSet{names: sorted}
		s.readers.put(h, rs)
	}
	enc.readerSet = rs
	return nil
}

// withReaders adds a stored post's readers to env (for a peer: replicas
// need them).
func (s *Store) withReaders(v []byte, env *tokenimv1.Envelope) error {
	if !isPost(v) {
		return nil
	}
	r, err := s.postReaders(v)
	if err != nil {
		return err
	}
	env.Readers = slices.Clone(r.names)
	return nil
}

// ReadGroup returns up to limit posts of a group mailbox with cursor >
// after that member is a reader of, in cursor order, and the last cursor
// it looked at (after, if none): the caller continues from there, as
// skipped posts are not for it. A limit <= 0 or > MaxReadLimit means
// MaxReadLimit.
func (s *Store) ReadGroup(mailbox, member string, after uint64, limit int) ([]*tokenimv1.Delivery, uint64, error) {
	if err := checkName(mailbox); err != nil {
		return nil, after, err
	}
	if limit <= 0 || limit > MaxReadLimit {
		limit = MaxReadLimit
	}
	if err := s.acquire(); err != nil {
		return nil, after, err
	}
	defer s.dbMu.RUnlock()
	if after == math.MaxUint64 {
		return nil, after, nil
	}
	if out, last, ok, err := s.readGroupTail(mailbox, member, after, limit); ok {
		return out, last, err
	}
	lo, hi := mailBounds(mailbox, after+1, math.MaxUint64)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, after, fmt.Errorf("relay: read: %w", err)
	}
	var out []*tokenimv1.Delivery
	last, scanned := after, 0
	for it.First(); it.Valid() && len(out) < limit && scanned < MaxGroupScan; it.Next() {
		scanned++
		cursor := mailCursor(it.Key())
		d, err := s.groupDelivery(mailbox, member, cursor, it.Value(), nil)
		if err != nil {
			it.Close()
			return nil, after, err
		}
		if d != nil {
			out = append(out, d)
		}
		last = cursor
	}
	if err := it.Close(); err != nil {
		return nil, after, fmt.Errorf("relay: read: %w", err)
	}
	return out, last, nil
}

// groupDelivery decodes one post for member, or nil if member is not one
// of its readers (rs: its readers if known).
func (s *Store) groupDelivery(mailbox, member string, cursor uint64, v []byte, rs *readerSet) (*tokenimv1.Delivery, error) {
	if !isPost(v) {
		return nil, fmt.Errorf("%w: %q/%d is not a group post", ErrCorrupt, mailbox, cursor)
	}
	if rs == nil {
		var err error
		if rs, err = s.postReaders(v); err != nil {
			return nil, err
		}
	}
	if !rs.has(member) {
		return nil, nil
	}
	env := new(tokenimv1.Envelope)
	if err := proto.Unmarshal(v[stubHeader:], env); err != nil {
		return nil, fmt.Errorf("%w: envelope %q/%d: %v", ErrCorrupt, mailbox, cursor, err)
	}
	return &tokenimv1.Delivery{Cursor: cursor, Envelope: env, Group: env.Group}, nil
}

// readGroupTail is ReadGroup from the mailbox's tail, if it covers after.
func (s *Store) readGroupTail(mailbox, member string, after uint64, limit int) (out []*tokenimv1.Delivery, last uint64, ok bool, err error) {
	s.subMu.RLock()
	t := s.tails[mailbox]
	if t == nil || !t.valid || after < t.base {
		s.subMu.RUnlock()
		return nil, after, false, nil
	}
	pick := slices.Clone(t.entries[t.from(after+1):])
	s.subMu.RUnlock()
	last = after
	for _, e := range pick {
		if len(out) == limit {
			break
		}
		if e.env != nil && e.readers != nil {
			if e.readers.has(member) {
				out = append(out, &tokenimv1.Delivery{Cursor: e.cursor, Envelope: e.env, Group: e.env.Group})
			}
			last = e.cursor
			continue
		}
		d, err := s.groupDelivery(mailbox, member, e.cursor, e.value, e.readers)
		if err != nil {
			return nil, after, true, err
		}
		if d != nil {
			out = append(out, d)
		}
		last = e.cursor
	}
	return out, last, true, nil
}

type groupAckOp struct {
	mailbox, member string
	upTo            uint64
}

type pruneOp struct {
	mailbox string
	keep    func(member string) bool
}

// AckGroup moves member's read position in a group mailbox up to upTo (it
// never moves back). Nothing is deleted: Prune deletes what every reader
// has passed. Like an Ack, it is written without an fsync of its own.
func (s *Store) AckGroup(mailbox, member string, upTo uint64) error {
	if err := checkName(mailbox); err != nil {
		return err
	}
	if err := checkName(member); err != nil {
		return err
	}
	if upTo == 0 {
		return nil
	}
	req := &request{groupAck: &groupAckOp{mailbox: mailbox, member: member, upTo: upTo}, done: make(chan error, 1)}
	if err := s.enqueue(req); err != nil {
		return err
	}
	return <-req.done
}

// Position returns member's read position in a group mailbox (0: none).
func (s *Store) Position(mailbox, member string) (uint64, error) {
	if err := checkName(mailbox); err != nil {
		return 0, err
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.dbMu.RUnlock()
	v, ok, err := s.get(positionKey(mailbox, member))
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: read position of %q in %q", ErrCorrupt, member, mailbox)
	}
	return binary.BigEndian.Uint64(v), nil
}

// Prune deletes a group mailbox's oldest posts that every reader for
// whom keep is true has acknowledged (keep: still a member; a reader
// removed since does not hold a post back), up to the first one someone
// has not. It returns the ids it deleted.
func (s *Store) Prune(mailbox string, keep func(member string) bool) ([][]byte, error) {
	if err := checkName(mailbox); err != nil {
		return nil, err
	}
	op := &pruneOp{mailbox: mailbox, keep: keep}
	req := &request{prune: op, done: make(chan error, 1)}
	if err := s.enqueue(req); err != nil {
		return nil, err
	}
	if err := <-req.done; err != nil {
		return nil, err
	}
	return req.pruned, nil
}

// groupAck records a read position (committer only).
func (b *builder) groupAck(op *groupAckOp) error {
	pos, err := b.position(op.mailbox, op.member)
	if err != nil || op.upTo <= pos {
		return err
	}
	k := positionKey(op.mailbox, op.member)
	b.positions[string(k)] = op.upTo
	return b.batch.Set(k, binary.BigEndian.AppendUint64(nil, op.upTo), nil)
}

// position is member's read position as of this batch (committer only).
func (b *builder) position(mailbox, member string) (uint64, error) {
	k := positionKey(mailbox, member)
	if p, ok := b.positions[string(k)]; ok {
		return p, nil
	}
	if p, ok := b.s.positions[string(k)]; ok {
		return p, nil
	}
	v, ok, err := b.s.get(k)
	if err != nil {
		return 0, err
	}
	var p uint64
	if ok {
		if len(v) != 8 {
			return 0, fmt.Errorf("%w: read position of %q in %q", ErrCorrupt, member, mailbox)
		}
		p = binary.BigEndian.Uint64(v)
	}
	if len(b.s.positions) >= positionCacheCap {
		clear(b.s.positions)
	}
	b.s.positions[string(k)] = p
	return p, nil
}

// positionCacheCap bounds the committer's cache of read positions.
const positionCacheCap = 1 << 17

// prune deletes the committed posts of op's mailbox that every kept reader
// has passed, oldest first, stopping at the first one not (committer
// only).
func (b *builder) prune(r *request) error {
	op := r.prune
	name := op.mailbox
	lo := b.s.acked[name] + 1
	if prev, ok := b.ackedTo[name]; ok {
		lo = max(lo, prev+1)
	}
	lower, upper := mailBounds(name, lo, math.MaxUint64)
	it, err := b.s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	var upTo uint64
	for it.First(); it.Valid(); it.Next() {
		key, v := it.Key(), it.Value()
		cursor := mailCursor(key)
		if b.deleted[string(key)] {
			upTo = cursor
			continue
		}
		done, err := b.allRead(name, cursor, v, op.keep)
		if err != nil {
			return err
		}
		if !done {
			break
		}
		if err := b.batch.Delete(bytes.Clone(key), nil); err != nil {
			return err
		}
		if err := b.unref(v); err != nil {
			return err
		}
		id, err := valueID(v)
		if err != nil {
			return err
		}
		b.deleted[string(key)] = true
		b.dCount--
		b.dBytes -= int64(len(v))
		r.pruned = append(r.pruned, id)
		upTo = cursor
	}
	if upTo == 0 {
		return nil
	}
	// Every cursor up to upTo is gone: recorded as an Ack (the counter is
	// saved, tails are trimmed, later scans start above it).
	b.ackedTo[name] = max(b.ackedTo[name], upTo)
	b.ackFloor[name] = max(b.ackFloor[name], upTo)
	return nil
}

// allRead reports whether every reader of the post at cursor for whom
// keep is true has acknowledged it.
func (b *builder) allRead(mailbox string, cursor uint64, v []byte, keep func(string) bool) (bool, error) {
	rs, err := b.s.postReaders(v)
	if err != nil {
		return false, err
	}
	for _, m := range rs.names {
		p, err := b.position(mailbox, m)
		if err != nil {
			return false, err
		}
		if p < cursor && (keep == nil || keep(m)) {
			return false, nil
		}
	}
	return true, nil
}
