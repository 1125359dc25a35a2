package relay

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/proto"
)

func TestAppendReadAck(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	bob := []*tokenimv1.Envelope{newEnv("bob", 10), newEnv("bob", 20), newEnv("bob", 30)}
	if dup := mustAppend(t, s, bob...); slices.Contains(dup, true) {
		t.Fatalf("dup = %v, want none", dup)
	}
	// "bo" is a prefix of "bob": its mailbox must stay separate.
	bo := newEnv("bo", 5)
	mustAppend(t, s, bo)

	ds, err := s.Read("bob", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("Read(bob) = %d deliveries, want 3", len(ds))
	}
	for i, d := range ds {
		if d.Cursor != uint64(i+1) || !proto.Equal(d.Envelope, bob[i]) {
			t.Errorf("delivery %d = cursor %d %v, want cursor %d %v", i, d.Cursor, d.Envelope, i+1, bob[i])
		}
	}
	if ds, _ := s.Read("bob", 1, 1); len(ds) != 1 || ds[0].Cursor != 2 {
		t.Errorf("Read(bob, after 1, limit 1) = %v, want cursor 2", ds)
	}
	if ds, _ := s.Read("bo", 0, 10); len(ds) != 1 || !proto.Equal(ds[0].Envelope, bo) {
		t.Errorf("Read(bo) = %v, want the one envelope for bo", ds)
	}
	if st := s.Stats(); st.Envelopes != 4 || st.Bytes <= 0 {
		t.Errorf("Stats = %+v, want 4 envelopes", st)
	}

	if err := s.Ack("bob", 2); err != nil {
		t.Fatal(err)
	}
	if got := cursors(t, s, "bob"); !slices.Equal(got, []uint64{3}) {
		t.Errorf("after Ack(2): cursors %v, want [3]", got)
	}
	if got := cursors(t, s, "bo"); !slices.Equal(got, []uint64{1}) {
		t.Errorf("Ack(bob) touched bo: cursors %v", got)
	}
	if err := s.Ack("bob", 1<<62); err != nil {
		t.Fatal(err)
	}
	if got := cursors(t, s, "bob"); len(got) != 0 {
		t.Errorf("after Ack(all): cursors %v, want none", got)
	}
	if st := s.Stats(); st.Envelopes != 1 {
		t.Errorf("Stats.Envelopes = %d, want 1", st.Envelopes)
	}
}

// Cursors are never reused across a restart: appends do not write the
// counter, deletions (ack, forget) do.
func TestCursorsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	mustAppend(t, s, newEnv("bob", 8), newEnv("bob", 8))
	if err := s.Ack("bob", 2); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, newEnv("carol", 8))
	dave := []*tokenimv1.Envelope{newEnv("dave", 8), newEnv("dave", 8), newEnv("dave", 8)}
	mustAppend(t, s, dave...)
	if err := s.Forget("dave", [][]byte{dave[2].Id}); err != nil { // the newest
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir, Options{})
	if st := s.Stats(); st.Envelopes != 3 { // carol's, dave's first two
		t.Errorf("Stats.Envelopes after reopen = %d, want 3", st.Envelopes)
	}
	mustAppend(t, s, newEnv("bob", 8))
	if got := cursors(t, s, "bob"); !slices.Equal(got, []uint64{3}) {
		t.Errorf("bob's cursors after reopen = %v, want [3] (never reused)", got)
	}
	mustAppend(t, s, newEnv("carol", 8), newEnv("dave", 8))
	if got := cursors(t, s, "carol"); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("carol's cursors after reopen = %v, want [1 2]", got)
	}
	if got := cursors(t, s, "dave"); !slices.Equal(got, []uint64{1, 2, 4}) {
		t.Errorf("dave's cursors after reopen = %v, want [1 2 4] (3 was forgotten, never reused)", got)
	}
}

// TestAckSameBatch commits appends and acks of one mailbox in one batch, as
// the committer does under load.
func TestAckSameBatch(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	mustAppend(t, s, newEnv("bob", 8)) // cursor 1, committed
	enc := func(n int) *request {
		r := &request{dup: make([]bool, n), done: make(chan error, 1)}
		for range n {
			e := newEnv("bob", 8)
			v, _ := marshalOpts.Marshal(e)
			r.envs = append(r.envs, encoded{id: [IDSize]byte(e.Id), to: "bob", value: v})
		}
		return r
	}
	ack := func(upTo uint64) *request {
		return &request{ack: &ackOp{recipient: "bob", upTo: upTo}, done: make(chan error, 1)}
	}
	// The committer is idle (nothing queued), so the test may commit.
	reqs := []*request{enc(2), ack(2), enc(1), ack(2), ack(1)} // cursors 2, 3; ack; 4
	s.commit(reqs)
	for i, r := range reqs {
		if err := <-r.done; err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if got := cursors(t, s, "bob"); !slices.Equal(got, []uint64{3, 4}) {
		t.Errorf("cursors = %v, want [3 4]", got)
	}
	if st := s.Stats(); st.Envelopes != 2 {
		t.Errorf("Stats.Envelopes = %d, want 2", st.Envelopes)
	}
}

func TestSubscribe(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	b1, cancel1 := s.Subscribe("bob")
	b2, cancel2 := s.Subscribe("bob")
	defer cancel2()
	a, cancelA := s.Subscribe("alice")
	defer cancelA()

	mustAppend(t, s, newEnv("bob", 8))
	mustAppend(t, s, newEnv("bob", 8)) // second wake-up coalesces
	for i, ch := range []<-chan struct{}{b1, b2} {
		select {
		case <-ch:
		default:
			t.Errorf("bob subscriber %d not notified", i)
		}
	}
	select {
	case <-a:
		t.Error("alice notified of bob's envelope")
	default:
	}

	cancel1()
	cancel1() // idempotent
	mustAppend(t, s, newEnv("bob", 8))
	select {
	case <-b1:
		t.Error("cancelled subscriber notified")
	default:
	}
	select {
	case <-b2:
	default:
		t.Error("remaining subscriber not notified")
	}
}

func TestClosed(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	_, err := s.Append(context.Background(), []*tokenimv1.Envelope{newEnv("bob", 8)})
	checks := map[string]error{"Append": err, "Ack": s.Ack("bob", 1)}
	_, checks["Read"] = s.Read("bob", 0, 1)
	_, checks["TakePrekey"] = s.TakePrekey("bob")
	_, checks["PrekeyCount"] = s.PrekeyCount("bob")
	_, checks["Sweep"] = s.Sweep()
	checks["PutPrekeys"] = s.PutPrekeys("bob", []*tokenimv1.OneTimePrekey{{Id: 1, PublicKey: []byte{5}}})
	for op, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", op, err)
		}
	}
}

// TestCloseInFlight closes the store under load: every Append either
// returns nil and is stored, or returns ErrClosed.
func TestCloseInFlight(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok [][]byte
	)
	for range 8 {
		wg.Go(func() {
			for {
				e := newEnv("bob", 64)
				_, err := s.Append(context.Background(), []*tokenimv1.Envelope{e})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				ok = append(ok, e.Id)
				mu.Unlock()
			}
		})
	}
	for s.Stats().Commits < 5 {
		mustAppend(t, s, newEnv("carol", 8))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = openStore(t, dir, Options{})
	got := cursors(t, s, "bob")
	if len(got) != len(ok) {
		t.Fatalf("%d envelopes stored, %d Appends succeeded", len(got), len(ok))
	}
	// Their ids are remembered: appending them again reports duplicates.
	for _, id := range ok {
		e := newEnv("bob", 8)
		e.Id = id
		if dup := mustAppend(t, s, e); !dup[0] {
			t.Fatalf("id %x of a successful Append not remembered", id)
		}
	}
}

func TestAppendContextCancelled(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, []*tokenimv1.Envelope{newEnv("bob", 8)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append(cancelled) = %v, want context.Canceled", err)
	}
	if got := cursors(t, s, "bob"); len(got) != 0 {
		t.Errorf("cancelled Append stored %v", got)
	}
}

func TestInvalidName(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	long := string(make([]byte, MaxName+1))
	for _, name := range []string{"", long} {
		if _, err := s.Read(name, 0, 1); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Read(%d bytes) = %v, want ErrInvalidName", len(name), err)
		}
		if err := s.Ack(name, 1); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Ack(%d bytes) = %v, want ErrInvalidName", len(name), err)
		}
	}
}

// An Ack beyond the mailbox's last cursor deletes what is there; envelopes
// stored after it are deleted by the next Ack that covers them (acks scan
// from where earlier ones ended).
func TestAckBeyondLastCursor(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	mustAppend(t, s, newEnv("bob", 8), newEnv("bob", 8))
	if err := s.Ack("bob", 100); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, newEnv("bob", 8))
	if got := cursors(t, s, "bob"); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("after acking 100 and storing one more: %v, want [3]", got)
	}
	if err := s.Ack("bob", 3); err != nil {
		t.Fatal(err)
	}
	if got := cursors(t, s, "bob"); len(got) != 0 {
		t.Fatalf("after acking 3: %v", got)
	}
	if st := s.Stats(); st.Envelopes != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v", st)
	}
}
