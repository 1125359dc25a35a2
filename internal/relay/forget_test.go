package relay

import (
	"context"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

func TestForgetAndSince(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var envs []*tokenimv1.Envelope
	for i := range 5 {
		id := make([]byte, IDSize)
		id[0] = byte(i + 1)
		envs = append(envs, &tokenimv1.Envelope{Id: id, To: "bob", From: "alice", Type: 2, Ciphertext: []byte{byte(i)}})
	}
	if _, err := s.Append(context.Background(), envs); err != nil {
		t.Fatal(err)
	}
	all, more, err := s.Since(0, nil, 0)
	if err != nil || more || len(all) != 5 {
		t.Fatalf("Since: %d envelopes, more=%v, %v", len(all), more, err)
	}
	page, more, _ := s.Since(0, nil, 2)
	rest, _, _ := s.Since(0, page[1].Id, 10)
	if !more || len(page) != 2 || len(rest) != 3 {
		t.Fatalf("paging: %d+%d more=%v", len(page), len(rest), more)
	}
	// Forget two (and an unknown id, and another recipient's view of one).
	unknown := make([]byte, IDSize)
	if err := s.Forget("carol", [][]byte{envs[0].Id}); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget("bob", [][]byte{envs[1].Id, envs[3].Id, unknown}); err != nil {
		t.Fatal(err)
	}
	left, _ := s.Read("bob", 0, 0)
	if len(left) != 3 || left[0].Envelope.Ciphertext[0] != 0 || left[1].Envelope.Ciphertext[0] != 2 {
		t.Fatalf("after forget: %v", left)
	}
	if st := s.Stats(); st.Envelopes != 3 {
		t.Fatalf("live count %d", st.Envelopes)
	}
	// A forgotten id is still a duplicate.
	dup, _ := s.Append(context.Background(), envs[1:2])
	if !dup[0] {
		t.Fatal("forgotten envelope stored again")
	}
	// Ack and Forget of the same envelope count it once.
	if err := s.Ack("bob", left[0].Cursor); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget("bob", [][]byte{envs[0].Id}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Envelopes != 2 {
		t.Fatalf("live count after ack+forget %d", st.Envelopes)
	}
}
