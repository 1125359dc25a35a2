package relay

import (
	"testing"
	"time"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

func TestSweep(t *testing.T) {
	const window = 24 * time.Hour
	clock := newFakeClock()
	dir := t.TempDir()
	s := openStore(t, dir, Options{DedupWindow: window, Now: clock.Now})
	acked, kept := newEnv("bob", 8), newEnv("bob", 8)
	mustAppend(t, s, acked, kept) // cursors 1, 2
	if err := s.Ack("bob", 1); err != nil {
		t.Fatal(err)
	}
	again := func(e *tokenimv1.Envelope) bool {
		c := newEnv("bob", 8)
		c.Id = e.Id
		return mustAppend(t, s, c)[0]
	}

	clock.Advance(window - time.Minute)
	if n, err := s.Sweep(); err != nil || n != 0 {
		t.Fatalf("Sweep inside the window = %d, %v, want 0", n, err)
	}
	if !again(acked) {
		t.Error("acked id forgotten inside the window")
	}

	clock.Advance(2 * time.Minute)
	if n, err := s.Sweep(); err != nil || n != 1 {
		t.Fatalf("Sweep after the window = %d, %v, want 1 (the acked envelope)", n, err)
	}
	if !again(kept) {
		t.Error("id of a stored envelope forgotten")
	}
	if again(acked) {
		t.Error("acked id still remembered after the window and a sweep")
	}
	if n := countKeys(t, s, tagAdmit); n != 2 { // acked and kept's (kept is stored), and the re-admitted acked id's
		t.Errorf("%d admission index entries, want 2", n)
	}

	// Open sweeps too: the re-admitted id expires and is gone after reopen.
	if err := s.Ack("bob", 3); err != nil {
		t.Fatal(err)
	}
	s.Close()
	clock.Advance(window + time.Minute)
	s = openStore(t, dir, Options{DedupWindow: window, Now: clock.Now})
	if again(acked) {
		t.Error("Open did not sweep")
	}
}
