package relay

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble"
)

// ackedCacheCap bounds Store.acked (mailboxes).
const ackedCacheCap = 1 << 16

// run is the committer goroutine: it drains the queue into batches, each
// committed with one fsync, until Close.
func (s *Store) run() {
	defer s.bg.Done()
	for {
		select {
		case <-s.stop:
			s.failQueued()
			return
		case <-s.wake:
		}
		for {
			select {
			case <-s.stop:
				s.failQueued()
				return
			default:
			}
			reqs := s.take()
			if len(reqs) == 0 {
				break
			}
			s.commit(reqs)
		}
	}
}

// take removes the oldest pending requests from the queue, up to
// MaxCommitEnvelopes and MaxCommitBytes (at least one), skipping cancelled ones.
func (s *Store) take() []*request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var taken []*request
	n, size, i := 0, 0, 0
	for ; i < len(s.queue); i++ {
		r := s.queue[i]
		if len(taken) > 0 && (n+r.weight() > MaxCommitEnvelopes || size+r.size > MaxCommitBytes) {
			break
		}
		s.queue[i] = nil
		if !r.state.CompareAndSwap(statePending, stateTaken) {
			continue // cancelled by its caller
		}
		taken = append(taken, r)
		n, size = n+r.weight(), size+r.size
	}
	s.queue = s.queue[i:]
	if len(s.queue) == 0 {
		s.queue = nil
	}
	return taken
}

// failQueued answers every queued request with ErrClosed.
func (s *Store) failQueued() {
	s.mu.Lock()
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	for _, r := range q {
		if r.state.CompareAndSwap(statePending, stateTaken) {
			r.done <- ErrClosed
		}
	}
}

// commit writes reqs in one batch, then updates the cursor cache and
// counters, wakes subscribers and answers every request. A batch that
// stores envelopes is committed with pebble.Sync; one that only deletes
// (Acks, Forgets) is not: a deletion lost in a crash leaves envelopes
// their reader had acknowledged — it resumes after its cursor, a client
// drops an id it already has, and a later Ack or the sweeper deletes them
// — and the write-ahead log is sequential, so the next synced batch makes
// it durable too. A live group of 1,000 members sends ~3,000 Acks a
// second; they no longer wait for the disk.
func (s *Store) commit(reqs []*request) {
	n := 0
	for _, r := range reqs {
		n += len(r.envs)
	}
	b := s.newBuilder(n)
	defer b.batch.Close()
	err := b.build(reqs)
	if err == nil && len(b.leafIDs) > 0 {
		_, err = s.msgLog.Stage(b.batch, b.leafIDs, b.leaves)
	}
	if err == nil {
		var sorted *pebble.Batch
		if sorted, err = s.sortBatch(b.batch); err == nil {
			opts := pebble.Sync
			if b.appends == 0 {
				opts = pebble.NoSync
			}
			err = sorted.Commit(opts)
		}
	}
	if lerr := s.msgLog.Committed(err == nil); err == nil && lerr != nil {
		err = lerr // cannot happen after a commit; kept for the record
	}
	if err == nil && len(b.leaves) > 0 && s.onLog != nil {
		defer s.onLog()
	}
	if err != nil {
		err = fmt.Errorf("relay: commit: %w", err)
		s.log.Error("relay commit failed", "err", err, "requests", len(reqs))
		for _, r := range reqs {
			r.done <- err
		}
		return
	}
	for name, c := range b.cursors {
		s.cursors[name] = c
	}
	s.liveCount += b.dCount
	s.liveBytes += b.dBytes
	s.envelopes.Store(s.liveCount)
	s.bytes.Store(s.liveBytes)
	s.commits.Add(1)
	s.appends.Add(b.appends)
	s.committed.Add(b.stored)
	for id := range b.ids {
		s.filter.add(id[:])
	}
	for h, st := range b.newRefs {
		s.cacheRef(h, st)
	}
	if len(s.acked)+len(b.ackFloor) > ackedCacheCap {
		clear(s.acked) // scans start at cursor 1 again until the next Ack
	}
	for name, c := range b.ackFloor {
		s.acked[name] = max(s.acked[name], c)
	}
	for k, p := range b.positions {
		if len(s.positions) >= positionCacheCap {
			clear(s.positions)
		}
		s.positions[k] = p
	}
	s.updateTails(b)
	for _, r := range reqs {
		r.done <- nil
	}
}

// builder accumulates one batch. Nothing in the Store changes until the
// batch committed.
type builder struct {
	s         *Store
	batch     *pebble.Batch
	nowMs     uint64
	cursors   map[string]uint64     // last cursor assigned in this batch
	ids       map[[IDSize]byte]bool // ids admitted in this batch
	logged    map[[IDSize]byte]bool // ids logged only, in this batch
	added     map[string][]added    // envelopes set in this batch, per recipient
	ackedTo   map[string]uint64     // highest Ack in this batch, per recipient
	ackFloor  map[string]uint64     // cursors at or below it are all deleted once committed
	deleted   map[string]bool       // mail keys Forget deleted in this batch
	forgot    map[string]bool       // recipients Forget deleted from
	notify    map[string]struct{}
	dCount    int64 // change of the live envelope count
	dBytes    int64 // change of the live bytes
	stored    uint64
	appends   uint64
	leafIDs   [][]byte // the message log's new leaves, in order
	leaves    [][]byte
	refs      map[[sha256.Size]byte]*refChange // shared bodies' reference changes
	admitted  [][IDSize]byte                   // ids stored in this batch, for the admission index
	expiring  map[uint64][][IDSize]byte        // retention end (ms) → ids, for the retention index
	newRefs   map[[sha256.Size]byte]refState   // their counts once committed
	positions map[string]uint64                // read positions set in this batch (group.go)
}

type added struct {
	cursor  uint64
	value   []byte
	body    []byte     // a stub's ciphertext
	readers *readerSet // a group post's readers
}

// newBuilder starts a batch for n envelopes. The committer's previous
// builder is reused, its maps cleared (they keep their storage: a group
// post's batch fills them with ~1,000 recipients, and allocating them per
// commit was a tenth of what a post allocated).
func (s *Store) newBuilder(n int) *builder {
	b := s.spare
	if b == nil {
		b = &builder{
			s: s, cursors: make(map[string]uint64, n), ids: make(map[[IDSize]byte]bool, n),
			added: make(map[string][]added, n), ackedTo: map[string]uint64{}, ackFloor: map[string]uint64{}, notify: make(map[string]struct{}, n),
			deleted: map[string]bool{}, forgot: map[string]bool{}, logged: map[[IDSize]byte]bool{},
			refs: map[[sha256.Size]byte]*refChange{}, newRefs: map[[sha256.Size]byte]refState{}, expiring: map[uint64][][IDSize]byte{},
			positions: map[string]uint64{},
		}
		s.spare = b
	} else {
		clear(b.cursors)
		clear(b.ids)
		clear(b.logged)
		clear(b.added)
		clear(b.ackedTo)
		clear(b.ackFloor)
		clear(b.deleted)
		clear(b.forgot)
		clear(b.notify)
		clear(b.refs)
		clear(b.newRefs)
		clear(b.expiring)
		clear(b.positions)
		clear(b.leafIDs)
		clear(b.leaves)
		b.dCount, b.dBytes, b.stored, b.appends = 0, 0, 0, 0
	}
	b.batch, b.nowMs = s.db.NewBatch(), unixMs(s.now().UnixMilli())
	b.leafIDs, b.leaves, b.admitted = b.leafIDs[:0], b.leaves[:0], b.admitted[:0]
	return b
}

// build adds reqs in queue order, then the counters they changed.
func (b *builder) build(reqs []*request) error {
	for _, r := range reqs {
		var err error
		switch {
		case r.ack != nil:
			err = b.ack(r.ack.recipient, r.ack.upTo)
		case r.forget != nil:
			err = b.forget(r.forget)
		case r.groupAck != nil:
			err = b.groupAck(r.groupAck)
		case r.prune != nil:
			err = b.prune(r)
		default:
			err = b.append(r)
			b.appends++
		}
		if err != nil {
			return err
		}
	}
	if err := b.applyRefs(); err != nil {
		return err
	}
	if err := b.indexTimes(); err != nil {
		return err
	}
	if err := b.saveCounters(); err != nil {
		return err
	}
	if b.dCount == 0 && b.dBytes == 0 {
		return nil
	}
	st := putUint64s(uint64(b.s.liveCount+b.dCount), uint64(b.s.liveBytes+b.dBytes))
	return b.batch.Set([]byte{tagStats}, st, nil)
}

// append adds r's envelopes that are not duplicates, marking the others.
func (b *builder) append(r *request) error {
	if r.logOnly {
		return b.logOnly(r)
	}
	for i := range r.envs {
		e := &r.envs[i]
		seen, err := b.seen(e.id)
		if err != nil {
			return err
		}
		if seen {
			r.dup[i] = true
			continue
		}
		c, err := b.nextCursor(e.to)
		if err != nil {
			return err
		}
		if err := b.setEnvelope(e, c); err != nil {
			return err
		}
		b.ids[e.id] = true
		b.leafIDs = append(b.leafIDs, e.id[:])
		b.leaves = append(b.leaves, e.leaf)
		b.added[e.to] = append(b.added[e.to], added{cursor: c, value: e.value, body: e.body, readers: e.readerSet})
		b.notify[e.to] = struct{}{}
		b.dCount++
		b.dBytes += int64(len(e.value))
		b.stored++
	}
	return nil
}

func (b *builder) setEnvelope(e *encoded, cursor uint64) error {
	if err := b.batch.Set(mailKey(e.to, cursor), e.value, nil); err != nil {
		return err
	}
	if e.body != nil {
		b.ref(e.hash, e.body)
	}
	if e.readers != nil || e.readerSet != nil {
		b.ref(e.readersHash, e.readers)
	}
	if err := b.batch.Set(dedupKey(e.id[:]), dedupValue(b.nowMs, cursor, e.to), nil); err != nil {
		return err
	}
	if e.expiresMs > 0 {
		ms := unixMs(e.expiresMs)
		b.expiring[ms] = append(b.expiring[ms], e.id)
	}
	b.admitted = append(b.admitted, e.id)
	return nil
}

// indexTimes writes the batch's admission and retention index entries: one
// key per time, the batch's first id in the key and the others in the
// value (a group post's 999 copies: one key each, not 999).
func (b *builder) indexTimes() error {
	if len(b.admitted) > 0 {
		if err := b.batch.Set(admitKey(b.nowMs, b.admitted[0][:]), joinIDs(b.admitted[1:]), nil); err != nil {
			return err
		}
	}
	for ms, ids := range b.expiring {
		if err := b.batch.Set(expiryKey(ms, ids[0][:]), joinIDs(ids[1:]), nil); err != nil {
			return err
		}
	}
	return nil
}

// logOnly stages the leaves of r's envelopes not in the log yet.
func (b *builder) logOnly(r *request) error {
	for i := range r.envs {
		e := &r.envs[i]
		if b.ids[e.id] || b.logged[e.id] {
			continue
		}
		if _, ok, err := b.s.msgLog.IndexOf(e.id[:]); err != nil {
			return err
		} else if ok {
			continue
		}
		b.logged[e.id] = true
		b.leafIDs = append(b.leafIDs, e.id[:])
		b.leaves = append(b.leaves, e.leaf)
	}
	return nil
}

// seen reports whether id was admitted before or earlier in this batch.
func (b *builder) seen(id [IDSize]byte) (bool, error) {
	if b.ids[id] {
		return true, nil
	}
	if !b.s.filter.mayContain(id[:]) {
		return false, nil
	}
	return b.s.has(dedupKey(id[:]))
}

// nextCursor assigns recipient's next cursor.
func (b *builder) nextCursor(name string) (uint64, error) {
	last, err := b.lastCursor(name)
	if err != nil {
		return 0, err
	}
	if last == math.MaxUint64 {
		return 0, fmt.Errorf("%w: cursor space of a mailbox exhausted", ErrCorrupt)
	}
	b.cursors[name] = last + 1
	return last + 1, nil
}

// saveCounters persists the last cursor of each mailbox this batch
// deleted from. A mailbox's last cursor is the larger of its counter and
// its newest stored envelope's cursor, so appends need not write the
// counter (one key less per envelope); a deletion must, or the cursors of
// deleted envelopes could be given again after a restart.
func (b *builder) saveCounters() error {
	names := map[string]bool{}
	for name := range b.ackedTo {
		names[name] = true
	}
	for name := range b.forgot {
		names[name] = true
	}
	for name := range names {
		c, err := b.lastCursor(name)
		if err != nil {
			return err
		}
		if err := b.batch.Set(counterKey(name), binary.BigEndian.AppendUint64(nil, c), nil); err != nil {
			return err
		}
	}
	return nil
}

// lastCursor returns name's last cursor assigned in this batch or, if none,
// committed.
func (b *builder) lastCursor(name string) (uint64, error) {
	if c, ok := b.cursors[name]; ok {
		return c, nil
	}
	return b.s.lastCursor(name)
}

// lastCursor returns recipient's last committed cursor (committer only):
// the larger of its counter and its newest stored envelope's cursor.
func (s *Store) lastCursor(name string) (uint64, error) {
	if c, ok := s.cursors[name]; ok {
		return c, nil
	}
	v, ok, err := s.get(counterKey(name))
	if err != nil {
		return 0, err
	}
	var c uint64
	if ok {
		if len(v) != 8 {
			return 0, fmt.Errorf("%w: cursor counter of %q", ErrCorrupt, name)
		}
		c = binary.BigEndian.Uint64(v)
	}
	lo, hi := mailBounds(name, 0, math.MaxUint64)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	if it.Last() {
		c = max(c, mailCursor(it.Key()))
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	s.cursors[name] = c
	return c, nil
}

// sortBatch returns b's operations in key order (operations on one key in
// their order in b, so the later one still wins). Pebble inserts a batch
// into its memtable skiplist one key at a time, reusing the previous
// key's position as a hint: in key order most inserts start next to the
// last one instead of searching from the top (a group post's batch is
// ~8,000 keys spread over the whole key space; this halved the insert
// time). Only Set and Delete occur in the committer's batches.
func (s *Store) sortBatch(b *pebble.Batch) (*pebble.Batch, error) {
	r, n := pebble.ReadBatch(b.Repr())
	ops := s.sortOps[:0]
	if cap(ops) < int(n) {
		ops = make([]sortOp, 0, n)
	}
	defer func() { // kept for the next batch (committer only), without its keys
		clear(ops)
		s.sortOps = ops[:0]
	}()
	for {
		kind, k, v, ok, err := r.Next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		var p [8]byte
		copy(p[:], k)
		ops = append(ops, sortOp{binary.BigEndian.Uint64(p[:]), kind, k, v, len(ops)})
	}
	slices.SortFunc(ops, func(a, b sortOp) int {
		if a.prefix != b.prefix {
			return cmp.Compare(a.prefix, b.prefix)
		}
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	out := s.sorted // reused: a group post's batch is ~0.5 MB
	if out == nil {
		out = s.db.NewBatchWithSize(len(b.Repr()))
		s.sorted = out
	} else {
		out.Reset()
	}
	for _, o := range ops {
		var err error
		switch o.kind {
		case pebble.InternalKeyKindSet:
			err = out.Set(o.key, o.val, nil)
		case pebble.InternalKeyKindDelete:
			err = out.Delete(o.key, nil)
		default:
			err = fmt.Errorf("relay: unexpected batch operation %v", o.kind)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sortOp is one batch operation being sorted (sortBatch).
type sortOp struct {
	prefix   uint64 // the key's first 8 bytes, compared first
	kind     pebble.InternalKeyKind
	key, val []byte
	seq      int
}
