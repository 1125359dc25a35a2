package relay

import (
	"context"
	"github.com/cockroachdb/pebble"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

func TestExpire(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mk := func(b byte, expires int64) *tokenimv1.Envelope {
		id := make([]byte, IDSize)
		id[0] = b
		return &tokenimv1.Envelope{Id: id, To: "bob", Type: 3, Ciphertext: []byte{b}, ExpiresAtMs: expires}
	}
	if _, err := s.Append(context.Background(), []*tokenimv1.Envelope{mk(1, 1000), mk(2, 5000), mk(3, 0)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Expire(999); err != nil || n != 0 {
		t.Fatalf("early expire: %d %v", n, err)
	}
	if n, err := s.Expire(1000); err != nil || n != 1 {
		t.Fatalf("expire at 1000: %d %v", n, err)
	}
	left, _ := s.Read("bob", 0, 0)
	if len(left) != 2 || left[0].Envelope.Ciphertext[0] != 2 {
		t.Fatalf("left: %v", left)
	}
	// One call's envelopes with one retention end share one index entry.
	if _, err := s.Append(context.Background(), []*tokenimv1.Envelope{mk(4, 7000), mk(5, 7000), mk(6, 7000)}); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, s, tagExpiry); n != 2 {
		t.Fatalf("%d retention index entries, want 2 (5000; 7000 for three)", n)
	}
	if n, _ := s.Expire(1 << 40); n != 4 {
		t.Fatalf("late expire deleted %d", n)
	}
	if n := countKeys(t, s, tagExpiry); n != 0 {
		t.Fatalf("%d retention index entries left", n)
	}
	if left, _ := s.Read("bob", 0, 0); len(left) != 1 || left[0].Envelope.ExpiresAtMs != 0 {
		t.Fatalf("the envelope without retention went: %v", left)
	}
	if dup, _ := s.Append(context.Background(), []*tokenimv1.Envelope{mk(1, 1000)}); !dup[0] {
		t.Fatal("an expired envelope was stored again")
	}
}

// countKeys counts the keys with tag.
func countKeys(t *testing.T, s *Store, tag byte) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tag}, UpperBound: []byte{tag + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}
