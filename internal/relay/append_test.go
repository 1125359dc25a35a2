package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

func TestDedup(t *testing.T) {
	id := newID()
	withID := func() *tokenimv1.Envelope { e := newEnv("bob", 16); e.Id = id; return e }
	tests := []struct {
		name   string
		before func(t *testing.T, s *Store) *Store // runs first; returns the store to use
		envs   int                                 // envelopes with id in the checked call
		want   []bool
		stored int // bob's envelopes at the end
	}{
		{"twice in one call", nil, 2, []bool{false, true}, 1},
		{"across calls", func(t *testing.T, s *Store) *Store { mustAppend(t, s, withID()); return s }, 1, []bool{true}, 1},
		{"across reopen", func(t *testing.T, s *Store) *Store {
			mustAppend(t, s, withID())
			dir := s.dir
			s.Close()
			return openStore(t, dir, Options{})
		}, 1, []bool{true}, 1},
		{"after ack", func(t *testing.T, s *Store) *Store {
			mustAppend(t, s, withID())
			if err := s.Ack("bob", 1); err != nil {
				t.Fatal(err)
			}
			return s
		}, 2, []bool{true, true}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), Options{})
			if tc.before != nil {
				s = tc.before(t, s)
			}
			var envs []*tokenimv1.Envelope
			for range tc.envs {
				envs = append(envs, withID())
			}
			if got := mustAppend(t, s, envs...); !slices.Equal(got, tc.want) {
				t.Errorf("dup = %v, want %v", got, tc.want)
			}
			if got := cursors(t, s, "bob"); len(got) != tc.stored {
				t.Errorf("bob has %d envelopes %v, want %d", len(got), got, tc.stored)
			}
		})
	}
}

func TestInvalidEnvelope(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(e *tokenimv1.Envelope) *tokenimv1.Envelope
		field string
	}{
		{"nil", func(*tokenimv1.Envelope) *tokenimv1.Envelope { return nil }, "envelope"},
		{"no id", func(e *tokenimv1.Envelope) *tokenimv1.Envelope { e.Id = nil; return e }, "id"},
		{"short id", func(e *tokenimv1.Envelope) *tokenimv1.Envelope { e.Id = e.Id[:15]; return e }, "id"},
		{"long id", func(e *tokenimv1.Envelope) *tokenimv1.Envelope { e.Id = append(e.Id, 0); return e }, "id"},
		{"no recipient", func(e *tokenimv1.Envelope) *tokenimv1.Envelope { e.To = ""; return e }, "to"},
		{"long recipient", func(e *tokenimv1.Envelope) *tokenimv1.Envelope { e.To = strings.Repeat("b", MaxName+1); return e }, "to"},
		{"no ciphertext", func(e *tokenimv1.Envelope) *tokenimv1.Envelope { e.Ciphertext = nil; return e }, "ciphertext"},
		{"ciphertext too long", func(e *tokenimv1.Envelope) *tokenimv1.Envelope {
			e.Ciphertext = make([]byte, MaxCiphertext+1)
			return e
		}, "ciphertext"},
	}
	s := openStore(t, t.TempDir(), Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			good := newEnv("bob", 8)
			bad := tc.edit(newEnv("bob", 8))
			_, err := s.Append(context.Background(), []*tokenimv1.Envelope{good, bad})
			if !errors.Is(err, ErrInvalidEnvelope) {
				t.Fatalf("Append = %v, want ErrInvalidEnvelope", err)
			}
			var ee *EnvelopeError
			if !errors.As(err, &ee) || ee.Index != 1 || ee.Field != tc.field {
				t.Errorf("error %v: want envelope 1, field %q", err, tc.field)
			}
			if got := cursors(t, s, "bob"); len(got) != 0 {
				t.Errorf("invalid call stored %v", got)
			}
		})
	}
	// The limits themselves are accepted.
	e := newEnv(strings.Repeat("b", MaxName), MaxCiphertext)
	if dup := mustAppend(t, s, e); dup[0] {
		t.Error("envelope at the limits reported as duplicate")
	}
	many := make([]*tokenimv1.Envelope, MaxAppendEnvelopes+1)
	if _, err := s.Append(context.Background(), many); !errors.Is(err, ErrTooManyEnvelopes) {
		t.Errorf("Append(%d) = %v, want ErrTooManyEnvelopes", len(many), err)
	}
}

// TestConcurrentAppend: 16 senders append one envelope per call to four
// mailboxes. Cursors are gap-free and unique, each sender's envelopes keep
// their order, and calls share commits.
func TestConcurrentAppend(t *testing.T) {
	const senders, perSender = 16, 40
	s := openStore(t, t.TempDir(), Options{})
	recipients := []string{"r0", "r1", "r2", "r3"}
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range perSender {
				e := newEnv(recipients[i%len(recipients)], 32)
				e.From = fmt.Sprintf("s%02d", g)
				e.ReceivedAtMs = int64(i) // sender's sequence number
				if _, err := s.Append(context.Background(), []*tokenimv1.Envelope{e}); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, r := range recipients {
		ds, err := s.Read(r, 0, MaxReadLimit)
		if err != nil {
			t.Fatal(err)
		}
		last := map[string]int64{}
		for i, d := range ds {
			if d.Cursor != uint64(i+1) {
				t.Fatalf("%s: delivery %d has cursor %d, want %d (gap-free)", r, i, d.Cursor, i+1)
			}
			if prev, ok := last[d.Envelope.From]; ok && d.Envelope.ReceivedAtMs <= prev {
				t.Errorf("%s: sender %s out of order", r, d.Envelope.From)
			}
			last[d.Envelope.From] = d.Envelope.ReceivedAtMs
		}
		total += len(ds)
	}
	st := s.Stats()
	if total != senders*perSender || st.Appends != senders*perSender {
		t.Errorf("stored %d, %d appends, want %d", total, st.Appends, senders*perSender)
	}
	if st.Commits >= st.Appends {
		t.Errorf("%d commits for %d appends: no group commit", st.Commits, st.Appends)
	}
	t.Logf("%d appends in %d commits (%.1f envelopes/commit)", st.Appends, st.Commits, st.EnvelopesPerCommit())
}
