package relay

import (
	"errors"
	"sync"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

func prekeys(from, n int) []*tokenimv1.OneTimePrekey {
	keys := make([]*tokenimv1.OneTimePrekey, n)
	for i := range keys {
		id := uint32(from + i)
		keys[i] = &tokenimv1.OneTimePrekey{Id: id, PublicKey: []byte{5, byte(id), byte(id >> 8)}}
	}
	return keys
}

func TestTakePrekeyConcurrent(t *testing.T) {
	const n = 200
	s := openStore(t, t.TempDir(), Options{})
	if err := s.PutPrekeys("bob", prekeys(1, n)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPrekeys("bo", prekeys(1, 3)); err != nil { // a name prefix of bob
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[uint32]int{}
	)
	for range 16 {
		wg.Go(func() {
			for {
				k, err := s.TakePrekey("bob")
				if err != nil {
					t.Errorf("TakePrekey: %v", err)
					return
				}
				if k == nil {
					return
				}
				mu.Lock()
				seen[k.Id]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d distinct keys handed out, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("key %d handed out %d times", id, c)
		}
	}
	if c, err := s.PrekeyCount("bo"); err != nil || c != 3 {
		t.Errorf("PrekeyCount(bo) = %d, %v, want 3", c, err)
	}
}

func TestTakePrekeyAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	if err := s.PutPrekeys("bob", prekeys(10, 5)); err != nil {
		t.Fatal(err)
	}
	for want := uint32(10); want < 12; want++ {
		if k, err := s.TakePrekey("bob"); err != nil || k.Id != want {
			t.Fatalf("TakePrekey = %v, %v, want id %d", k, err, want)
		}
	}
	s.Close()
	s = openStore(t, dir, Options{})
	if c, err := s.PrekeyCount("bob"); err != nil || c != 3 {
		t.Fatalf("PrekeyCount after reopen = %d, %v, want 3", c, err)
	}
	k, err := s.TakePrekey("bob")
	if err != nil || k.Id != 12 || string(k.PublicKey) != string(prekeys(12, 1)[0].PublicKey) {
		t.Fatalf("TakePrekey after reopen = %v, %v, want id 12", k, err)
	}
	if k, err := s.TakePrekey("nobody"); k != nil || err != nil {
		t.Errorf("TakePrekey(nobody) = %v, %v, want nil, nil", k, err)
	}
}

func TestPutPrekeys(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	if err := s.PutPrekeys("bob", prekeys(0, MaxPrekeysPerAccount)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPrekeys("bob", prekeys(MaxPrekeysPerAccount, 1)); !errors.Is(err, ErrTooManyPrekeys) {
		t.Errorf("PutPrekeys over the cap = %v, want ErrTooManyPrekeys", err)
	}
	// Replacing an id does not count against the cap.
	repl := &tokenimv1.OneTimePrekey{Id: 0, PublicKey: []byte{5, 0xee}}
	if err := s.PutPrekeys("bob", []*tokenimv1.OneTimePrekey{repl}); err != nil {
		t.Fatalf("replacing a prekey: %v", err)
	}
	if c, _ := s.PrekeyCount("bob"); c != MaxPrekeysPerAccount {
		t.Errorf("PrekeyCount = %d, want %d", c, MaxPrekeysPerAccount)
	}
	if k, _ := s.TakePrekey("bob"); k == nil || string(k.PublicKey) != string(repl.PublicKey) {
		t.Errorf("TakePrekey = %v, want the replaced key", k)
	}
	for _, bad := range []*tokenimv1.OneTimePrekey{nil, {Id: 1}, {Id: 1, PublicKey: make([]byte, MaxPrekeyBytes+1)}} {
		if err := s.PutPrekeys("carol", []*tokenimv1.OneTimePrekey{bad}); !errors.Is(err, ErrInvalidPrekey) {
			t.Errorf("PutPrekeys(%v) = %v, want ErrInvalidPrekey", bad, err)
		}
	}
	if err := s.PutPrekeys("", prekeys(0, 1)); !errors.Is(err, ErrInvalidName) {
		t.Errorf("PutPrekeys(no account) = %v, want ErrInvalidName", err)
	}
}
