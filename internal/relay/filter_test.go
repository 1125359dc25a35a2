package relay

import (
	"context"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// The filter never forgets an id; it rarely claims one it never saw.
func TestIDFilter(t *testing.T) {
	f := newIDFilter()
	var ids [][]byte
	for range 100_000 {
		id := newID()
		f.add(id)
		ids = append(ids, id)
	}
	for _, id := range ids {
		if !f.mayContain(id) {
			t.Fatal("the filter lost an id")
		}
	}
	fp := 0
	for range 100_000 {
		if f.mayContain(newID()) {
			fp++
		}
	}
	if fp > 100 {
		t.Fatalf("%d false positives in 100,000", fp)
	}
}

// Duplicates are still caught after a reopen (the filter is rebuilt from
// the dedup index) and within a batch.
func TestDedupAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e := newEnv("ann", 64)
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if dup, err := s.Append(ctx, []*tokenimv1.Envelope{e, e}); err != nil || dup[0] || !dup[1] {
		t.Fatalf("same id twice in one call: %v %v", dup, err)
	}
	s.Close()
	s = openStore(t, dir, Options{})
	if dup, err := s.Append(ctx, []*tokenimv1.Envelope{e}); err != nil || !dup[0] {
		t.Fatalf("after reopen: %v %v", dup, err)
	}
}
