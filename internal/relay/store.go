package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/tokenim/tokenim/internal/msglog"
)

// Options configure Open.
type Options struct {
	// Dir is the Pebble directory; it is created if missing.
	Dir string
	// DedupWindow is how long an envelope id is remembered after admission
	// (DefaultDedupWindow when zero).
	DedupWindow time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger may be nil.
	Logger *slog.Logger
	// OnLogGrowth, if set, is called (from the committer: it must not
	// block) after each commit that added leaves to the message log.
	OnLogGrowth func()
}

// Store is a node's durable mailbox and prekey store. See the package doc.
type Store struct {
	db     *pebble.DB
	dir    string
	log    *slog.Logger
	now    func() time.Time
	window time.Duration

	mu     sync.Mutex // guards closed and queue
	closed bool
	queue  []*request
	wake   chan struct{} // capacity 1: the queue is not empty
	stop   chan struct{} // closed by Close
	bg     sync.WaitGroup

	// dbMu is held shared by every call that uses db outside the committer;
	// Close holds it exclusively to close db.
	dbMu     sync.RWMutex
	dbClosed bool

	// Owned by the committer goroutine (and Open before it starts).
	cursors   map[string]uint64              // last cursor per recipient, loaded lazily
	refCache  map[[sha256.Size]byte]refState // shared bodies' counts (body.go)
	sortOps   []sortOp                       // sortBatch's buffer
	sorted    *pebble.Batch                  // sortBatch's batch, reset for each commit
	spare     *builder                       // the committer's builder, reused (newBuilder)
	acked     map[string]uint64              // per mailbox: every cursor up to it is deleted
	positions map[string]uint64              // read positions in group mailboxes (group.go)
	liveCount int64
	liveBytes int64

	envelopes atomic.Int64 // mirrors liveCount for Stats
	bytes     atomic.Int64 // mirrors liveBytes for Stats
	commits   atomic.Uint64
	appends   atomic.Uint64
	committed atomic.Uint64

	msgLog *msglog.Log // every stored envelope's leaf, in the same batch
	filter *idFilter   // over the dedup index (filter.go); committer only
	onLog  func()      // Options.OnLogGrowth

	subMu      sync.RWMutex // readers of tails share it
	subs       map[string]map[chan struct{}]struct{}
	tails      map[string]*tail // per subscribed recipient (tail.go)
	tailBytes  int              // memory of all tails, shared bodies once
	tailBodies map[*byte]int    // shared bodies held by tails: entries holding each
	wakeBuf    []chan struct{}  // committer only: subscribers to wake after a commit

	readers readerSets // parsed reader lists of group posts (group.go)

	prekeyMu [prekeyStripes]sync.Mutex
	sweepMu  sync.Mutex
}

// Stats are counters for metrics.
type Stats struct {
	Envelopes int64  // envelopes stored now (not yet acked)
	Bytes     int64  // what they take: values, and shared bodies once each
	Commits   uint64 // committer batches since Open
	Appends   uint64 // Append calls committed since Open
	Committed uint64 // envelopes stored since Open (duplicates excluded)
}

// EnvelopesPerCommit is the mean number of envelopes a commit stored.
func (s Stats) EnvelopesPerCommit() float64 {
	if s.Commits == 0 {
		return 0
	}
	return float64(s.Committed) / float64(s.Commits)
}

// Open opens (or creates) the store in opts.Dir, sweeps expired dedup
// entries and starts the committer and the hourly sweeper.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("relay: open: no directory")
	}
	s := &Store{
		dir: opts.Dir, log: opts.Logger, now: opts.Now, window: opts.DedupWindow, onLog: opts.OnLogGrowth,
		wake: make(chan struct{}, 1), stop: make(chan struct{}),
		cursors: make(map[string]uint64), refCache: map[[sha256.Size]byte]refState{}, acked: map[string]uint64{}, positions: map[string]uint64{}, tailBodies: map[*byte]int{}, subs: make(map[string]map[chan struct{}]struct{}),
		tails: make(map[string]*tail),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.window <= 0 {
		s.window = DefaultDedupWindow
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("relay: open: %w", err)
	}
	po := pebbleOptions(s.log)
	db, err := pebble.Open(opts.Dir, po)
	po.Cache.Unref() // the DB holds its own reference
	if err != nil {
		return nil, fmt.Errorf("relay: open %s: %w", opts.Dir, err)
	}
	s.db = db
	if err := s.load(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if s.msgLog, err = msglog.New(db, tagLog); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if err := s.loadFilter(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if _, err := s.Sweep(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	s.bg.Add(2)
	go s.run()
	go s.sweeper()
	s.log.Info("relay store open", "dir", opts.Dir, "envelopes", s.liveCount, "bytes", s.liveBytes)
	return s, nil
}

// pebbleOptions are Pebble's defaults plus Bloom filters on every level:
// each Append looks up random envelope ids that are mostly absent, and a
// filter answers such a lookup without reading a data block. No block
// compression: envelopes are ciphertext, which does not compress, so
// snappy would only cost CPU on every write and read.
func pebbleOptions(log *slog.Logger) *pebble.Options {
	o := &pebble.Options{
		Logger: pebbleLogger{log}, Levels: make([]pebble.LevelOptions, 7),
		Cache: pebble.NewCache(cacheBytes), MemTableSize: memTableBytes,
	}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
		o.Levels[i].FilterType = pebble.TableFilter
		o.Levels[i].Compression = pebble.NoCompression
	}
	return o.EnsureDefaults()
}

// load checks the layout version (writing it into a new store) and reads
// the live counters.
func (s *Store) load() error {
	v, ok, err := s.get([]byte{tagVersion})
	switch {
	case err != nil:
		return fmt.Errorf("relay: open: %w", err)
	case !ok:
		ver := binary.BigEndian.AppendUint64(nil, layoutVersion)
		if err := s.db.Set([]byte{tagVersion}, ver, pebble.Sync); err != nil {
			return fmt.Errorf("relay: open: %w", err)
		}
	case len(v) != 8 || binary.BigEndian.Uint64(v) != layoutVersion:
		return fmt.Errorf("%w: %x", ErrLayout, v)
	}
	v, ok, err = s.get([]byte{tagStats})
	if err != nil {
		return fmt.Errorf("relay: open: %w", err)
	}
	if ok {
		if len(v) != 16 {
			return fmt.Errorf("%w: stats record", ErrCorrupt)
		}
		s.liveCount = int64(binary.BigEndian.Uint64(v[:8]))
		s.liveBytes = int64(binary.BigEndian.Uint64(v[8:]))
	}
	s.envelopes.Store(s.liveCount)
	s.bytes.Store(s.liveBytes)
	return nil
}

// Close stops the committer and the sweeper and closes the database.
// Appends still queued return ErrClosed; a commit under way completes.
// Closing twice returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.bg.Wait()
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	s.dbClosed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("relay: close: %w", err)
	}
	return nil
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Envelopes: s.envelopes.Load(), Bytes: s.bytes.Load(),
		Commits: s.commits.Load(), Appends: s.appends.Load(), Committed: s.committed.Load(),
	}
}

// acquire holds the database open for a call outside the committer; the
// caller must call s.dbMu.RUnlock when it returns nil.
func (s *Store) acquire() error {
	s.dbMu.RLock()
	if s.dbClosed {
		s.dbMu.RUnlock()
		return ErrClosed
	}
	return nil
}

// get returns a copy of key's value and whether it exists.
func (s *Store) get(key []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := bytes.Clone(v)
	return out, true, closer.Close()
}

// has reports whether key exists.
func (s *Store) has(key []byte) (bool, error) {
	_, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

// pebbleLogger sends Pebble's log to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble when it cannot continue; it must not return.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic(msg)
}

// Log is the store's message log: one leaf per stored envelope, in the
// order stored (package msglog). Its readers use the database: call them
// inside WithLog, which keeps the store open meanwhile.
func (s *Store) Log() *msglog.Log { return s.msgLog }

// WithLog runs fn with the message log while the store cannot close
// (ErrClosed if it has).
func (s *Store) WithLog(fn func(*msglog.Log) error) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.dbMu.RUnlock()
	return fn(s.msgLog)
}
