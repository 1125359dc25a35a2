package nodeauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

func TestAuthenticate(t *testing.T) {
	now := time.Unix(1000, 0)
	a := New("node1", func() time.Time { return now })
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	_ = otherPub

	nonce, err := a.Challenge("alice")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.Authenticate("alice", nonce, Sign(priv, "node1", nonce), pub)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := a.Handle(tok); err != nil || h != "alice" {
		t.Fatalf("Handle = %q, %v", h, err)
	}
	// Single use.
	if _, _, err := a.Authenticate("alice", nonce, Sign(priv, "node1", nonce), pub); !errors.Is(err, ErrBadChallenge) {
		t.Fatalf("reused nonce: %v", err)
	}
	cases := []struct {
		name   string
		handle string
		sign   func(n []byte) []byte
		age    time.Duration
		want   error
	}{
		{"wrong key", "alice", func(n []byte) []byte { return Sign(otherPriv, "node1", n) }, 0, ErrBadSignature},
		{"other node's answer", "alice", func(n []byte) []byte { return Sign(priv, "node2", n) }, 0, ErrBadSignature},
		{"other handle", "bob", func(n []byte) []byte { return Sign(priv, "node1", n) }, 0, ErrBadChallenge},
		{"expired", "alice", func(n []byte) []byte { return Sign(priv, "node1", n) }, 2 * ChallengeTTL, ErrBadChallenge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nonce, _ := a.Challenge("alice")
			saved := now
			now = now.Add(c.age)
			defer func() { now = saved }()
			if _, _, err := a.Authenticate(c.handle, nonce, c.sign(nonce), pub); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	now = now.Add(SessionTTL + time.Second)
	if _, err := a.Handle(tok); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired session: %v", err)
	}
	if _, err := a.Handle("nope"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("unknown token: %v", err)
	}
}
