package relay

import (
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// openStore opens a store in dir and closes it when the test ends.
func openStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	opts.Dir = dir
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newID() []byte {
	id := make([]byte, IDSize)
	rand.Read(id)
	return id
}

// newEnv returns a valid envelope for to with a random id.
func newEnv(to string, size int) *tokenimv1.Envelope {
	ct := make([]byte, size)
	rand.Read(ct)
	return &tokenimv1.Envelope{
		Id: newID(), To: to, From: "alice", Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE,
		Ciphertext: ct, ReceivedAtMs: 1_700_000_000_000,
	}
}

// fakeClock is a clock tests move by hand; safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// cursors returns the cursors of recipient's mailbox.
func cursors(t testing.TB, s *Store, recipient string) []uint64 {
	t.Helper()
	var out []uint64
	after := uint64(0)
	for {
		ds, err := s.Read(recipient, after, 0)
		if err != nil {
			t.Fatalf("Read(%q): %v", recipient, err)
		}
		if len(ds) == 0 {
			return out
		}
		for _, d := range ds {
			out = append(out, d.Cursor)
			after = d.Cursor
		}
	}
}

func mustAppend(t testing.TB, s *Store, envs ...*tokenimv1.Envelope) []bool {
	t.Helper()
	dup, err := s.Append(t.Context(), envs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return dup
}
