package node

import (
	"crypto/sha256"
	"fmt"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/relay"
	"google.golang.org/protobuf/proto"
)

// expandShared returns the envelopes of a Send or Replicate request: the
// plain ones, then each shared copy with the shared ciphertext filled in
// (one slice for all copies: nothing downstream modifies a ciphertext).
// It checks the form a shared ciphertext must have and the cap on
// envelopes per request.
func expandShared(plain []*tokenimv1.Envelope, shared []*tokenimv1.SharedCiphertext) ([]*tokenimv1.Envelope, error) {
	n := len(plain)
	for _, sc := range shared {
		n += len(sc.GetCopies())
	}
	if n == 0 || n > MaxEnvelopesPerSend {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%d envelopes in one request (1 to %d)", n, MaxEnvelopesPerSend))
	}
	if len(shared) == 0 {
		return plain, nil
	}
	envs := make([]*tokenimv1.Envelope, 0, n)
	envs = append(envs, plain...)
	for i, sc := range shared {
		bad := func(format string, args ...any) error {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("shared ciphertext %d: "+format, append([]any{i}, args...)...))
		}
		switch {
		case sc == nil || len(sc.Ciphertext) == 0:
			return nil, bad("empty")
		case len(sc.Copies) == 0:
			return nil, bad("no copies")
		}
		for j, c := range sc.Copies {
			if c == nil {
				return nil, bad("copy %d is nil", j)
			}
			if len(c.Ciphertext) != 0 {
				return nil, bad("copy %d carries a ciphertext of its own", j)
			}
			c.Ciphertext = sc.Ciphertext
			envs = append(envs, c)
		}
	}
	return envs, nil
}

// packShared is the inverse of expandShared for a request to a peer:
// envelopes that carry the same ciphertext (of at least
// relay.SharedMinSize bytes) go as copies of one shared ciphertext. envs
// are not modified.
func packShared(envs []*tokenimv1.Envelope) (plain []*tokenimv1.Envelope, shared []*tokenimv1.SharedCiphertext) {
	count := map[[sha256.Size]byte]int{}
	hashes := make([][sha256.Size]byte, len(envs))
	for i, e := range envs {
		if len(e.Ciphertext) >= relay.SharedMinSize {
			hashes[i] = sha256.Sum256(e.Ciphertext)
			count[hashes[i]]++
		}
	}
	index := map[[sha256.Size]byte]*tokenimv1.SharedCiphertext{}
	for i, e := range envs {
		if len(e.Ciphertext) < relay.SharedMinSize || count[hashes[i]] < 2 {
			plain = append(plain, e)
			continue
		}
		sc := index[hashes[i]]
		if sc == nil {
			sc = &tokenimv1.SharedCiphertext{Ciphertext: e.Ciphertext}
			index[hashes[i]] = sc
			shared = append(shared, sc)
		}
		c := proto.Clone(e).(*tokenimv1.Envelope) // e may be read concurrently: never modified
		c.Ciphertext = nil
		sc.Copies = append(sc.Copies, c)
	}
	return plain, shared
}
