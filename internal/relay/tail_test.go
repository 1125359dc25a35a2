package relay

import (
	"context"
	"math/rand/v2"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/msglog"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/proto"
)

// TestTailMatchesPebble runs random appends (group posts with shared
// bodies among them), acks, forgets and (un)subscriptions and checks after
// each that every Read answered from the in-memory tail equals the same
// read from Pebble, and that shared bodies are counted right.
func TestTailMatchesPebble(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"ann", "bob"}
	var ids = map[string][][]byte{}
	cancels := map[string]func(){}
	served := 0
	for step := range 300 {
		name := names[rng.IntN(len(names))]
		switch op := rng.IntN(12); {
		case op >= 10: // a group post: one ciphertext for both, maybe with a 1:1 envelope
			post := groupPost(SharedMinSize+rng.IntN(3000), names...)
			if rng.IntN(2) == 0 {
				post = append(post, newEnv(name, 300))
			}
			for _, e := range post {
				ids[e.To] = append(ids[e.To], e.Id)
			}
			if _, err := s.Append(ctx, post); err != nil {
				t.Fatal(err)
			}
		case op < 6:
			var envs []*tokenimv1.Envelope
			for range 1 + rng.IntN(5) {
				e := newEnv(name, 64+rng.IntN(2000))
				if rng.IntN(20) == 0 {
					e.Ciphertext = make([]byte, MaxCiphertext) // fills the tail's byte cap sooner
				}
				envs = append(envs, e)
				ids[name] = append(ids[name], e.Id)
			}
			if _, err := s.Append(ctx, envs); err != nil {
				t.Fatal(err)
			}
		case op < 7:
			all, err := s.readDB(name, 0, MaxReadLimit)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) > 0 {
				if err := s.Ack(name, all[rng.IntN(len(all))].Cursor); err != nil {
					t.Fatal(err)
				}
			}
		case op < 8:
			if l := ids[name]; len(l) > 0 {
				if err := s.Forget(name, [][]byte{l[rng.IntN(len(l))]}); err != nil {
					t.Fatal(err)
				}
			}
		default:
			if c, ok := cancels[name]; ok {
				c()
				delete(cancels, name)
			} else {
				_, cancels[name] = s.Subscribe(name)
			}
		}
		checkBodies(t, s)
		checkTailBytes(t, s)
		for _, n := range names {
			all, err := s.readDB(n, 0, MaxReadLimit)
			if err != nil {
				t.Fatal(err)
			}
			for _, after := range []uint64{0, 1, uint64(len(all) / 2), lastCursor(all), lastCursor(all) + 1} {
				for _, limit := range []int{1, 3, MaxReadLimit} {
					want, err := s.readDB(n, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					got, ok, err := s.readTail(n, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						continue
					}
					served++
					if len(got) != len(want) {
						t.Fatalf("step %d %s after %d limit %d: tail %d deliveries, pebble %d", step, n, after, limit, len(got), len(want))
					}
					for i := range got {
						if !proto.Equal(got[i], want[i]) {
							t.Fatalf("step %d %s after %d: delivery %d differs (cursor %d vs %d)", step, n, after, i, got[i].Cursor, want[i].Cursor)
						}
					}
				}
			}
		}
	}
	if served < 500 {
		t.Fatalf("the tail answered only %d reads", served)
	}
	if s.tailBytes < 0 || s.tailBytes > tailBudget {
		t.Fatalf("tail bytes %d", s.tailBytes)
	}
}

func lastCursor(ds []*tokenimv1.Delivery) uint64 {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)-1].Cursor
}

// Every stored envelope gets a leaf in the message log, in the same batch;
// duplicates do not.
func TestLogLeafPerStoredEnvelope(t *testing.T) {
	grew := 0
	s := openStore(t, t.TempDir(), Options{OnLogGrowth: func() { grew++ }})
	ctx := context.Background()
	a, b := newEnv("ann", 100), newEnv("bob", 100)
	a.Commitment = make([]byte, CommitmentSize)
	if _, err := s.Append(ctx, []*tokenimv1.Envelope{a, b}); err != nil {
		t.Fatal(err)
	}
	if dup, err := s.Append(ctx, []*tokenimv1.Envelope{a}); err != nil || !dup[0] {
		t.Fatalf("duplicate: %v %v", dup, err)
	}
	if s.Log().Size() != 2 || grew != 1 {
		t.Fatalf("log size %d, grew %d times", s.Log().Size(), grew)
	}
	for i, e := range []*tokenimv1.Envelope{a, b} {
		idx, ok, err := s.Log().IndexOf(e.Id)
		if err != nil || !ok || idx != uint64(i) {
			t.Fatalf("leaf of envelope %d: %d %v %v", i, idx, ok, err)
		}
	}
	root, _ := s.Log().Root(2)
	p, _ := s.Log().Inclusion(1, 2)
	leaf := msglog.LeafHash(msglog.LeafData(b.Id, b.Ciphertext, nil))
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 1, 2, leaf, p, root); err != nil {
		t.Fatal(err)
	}
}

// LogOnly logs an envelope without storing it, once.
func TestLogOnly(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	ctx := context.Background()
	e := newEnv("ann", 100)
	for range 2 {
		if err := s.LogOnly(ctx, []*tokenimv1.Envelope{e}); err != nil {
			t.Fatal(err)
		}
	}
	if s.Log().Size() != 1 || s.Stats().Envelopes != 0 {
		t.Fatalf("log size %d, stored %d", s.Log().Size(), s.Stats().Envelopes)
	}
	if _, err := s.Append(ctx, []*tokenimv1.Envelope{e}); err != nil { // stored later (anti-entropy)
		t.Fatal(err)
	}
	if idx, ok, _ := s.Log().IndexOf(e.Id); !ok || idx != 1 || s.Stats().Envelopes != 1 {
		t.Fatalf("after storing: leaf %d %v, stored %d", idx, ok, s.Stats().Envelopes)
	}
}

// checkTailBytes recomputes the tails' memory: values, each shared body once.
func checkTailBytes(t *testing.T, s *Store) {
	t.Helper()
	s.subMu.Lock()
	defer s.subMu.Unlock()
	want, bodies := 0, map[*byte]int{}
	for _, tl := range s.tails {
		for _, e := range tl.entries {
			want += len(e.value)
			if len(e.body) > 0 {
				if bodies[&e.body[0]] == 0 {
					want += len(e.body)
				}
				bodies[&e.body[0]]++
			}
		}
	}
	if s.tailBytes != want || len(bodies) != len(s.tailBodies) {
		t.Fatalf("tail bytes %d, entries hold %d; %d bodies counted, %d held", s.tailBytes, want, len(s.tailBodies), len(bodies))
	}
}
