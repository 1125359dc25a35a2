package relay

import (
	"context"
	"math/rand/v2"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/proto"
)

// TestTailMatchesPebble runs random appends, acks, forgets and
// (un)subscriptions and checks after each that every Read answered from the
// in-memory tail equals the same read from Pebble.
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
		switch op := rng.IntN(10); {
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
