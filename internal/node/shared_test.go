package node

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/proto"
)

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// Packing envelopes for a peer and expanding them there gives the same
// envelopes; a group post's ciphertext travels once; the originals are
// not modified.
func TestPackExpandShared(t *testing.T) {
	post, lone, small := randBytes(1200), randBytes(900), randBytes(40)
	var envs []*tokenimv1.Envelope
	for i, to := range []string{"ann", "bob", "cat"} {
		envs = append(envs, &tokenimv1.Envelope{Id: randBytes(16), To: to, Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP, Group: "team", Epoch: 2, Ciphertext: post, Commitment: randBytes(32)})
		if i == 1 {
			envs = append(envs, &tokenimv1.Envelope{Id: randBytes(16), To: to, Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE, Ciphertext: lone})
			envs = append(envs, &tokenimv1.Envelope{Id: randBytes(16), To: "ann", Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE, Ciphertext: small},
				&tokenimv1.Envelope{Id: randBytes(16), To: "bob", Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE, Ciphertext: small})
		}
	}
	orig := make([]*tokenimv1.Envelope, len(envs))
	for i, e := range envs {
		orig[i] = proto.Clone(e).(*tokenimv1.Envelope)
	}
	plain, shared := packShared(envs)
	if len(shared) != 1 || len(shared[0].Copies) != 3 || len(plain) != 3 || !bytes.Equal(shared[0].Ciphertext, post) {
		t.Fatalf("packed: %d plain, %d shared", len(plain), len(shared))
	}
	for i := range envs {
		if !proto.Equal(envs[i], orig[i]) {
			t.Fatalf("packShared modified envelope %d", i)
		}
	}
	wire, _ := proto.Marshal(&tokenimv1.ReplicateRequest{Envelopes: plain, Shared: shared})
	var req tokenimv1.ReplicateRequest
	if err := proto.Unmarshal(wire, &req); err != nil {
		t.Fatal(err)
	}
	if len(wire) > 2*len(post)+2*len(lone) {
		t.Fatalf("a request of %d bytes: the shared ciphertext went more than once", len(wire))
	}
	got, err := expandShared(req.Envelopes, req.Shared)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*tokenimv1.Envelope{}
	for _, e := range got {
		byID[string(e.Id)] = e
	}
	if len(got) != len(envs) {
		t.Fatalf("%d envelopes back, want %d", len(got), len(envs))
	}
	for _, e := range orig {
		if !proto.Equal(byID[string(e.Id)], e) {
			t.Fatalf("envelope for %s came back different", e.To)
		}
	}
}

// A malformed shared ciphertext is refused with the reason.
func TestExpandSharedBadInput(t *testing.T) {
	cp := func() *tokenimv1.Envelope { return &tokenimv1.Envelope{Id: randBytes(16), To: "ann"} }
	many := &tokenimv1.SharedCiphertext{Ciphertext: []byte("x")}
	for range MaxEnvelopesPerSend + 1 {
		many.Copies = append(many.Copies, cp())
	}
	own := cp()
	own.Ciphertext = []byte("mine")
	for _, tc := range []struct {
		name   string
		plain  []*tokenimv1.Envelope
		shared []*tokenimv1.SharedCiphertext
		want   string
	}{
		{"nothing", nil, nil, "0 envelopes"},
		{"too many", nil, []*tokenimv1.SharedCiphertext{many}, "1025 envelopes"},
		{"empty ciphertext", nil, []*tokenimv1.SharedCiphertext{{Copies: []*tokenimv1.Envelope{cp()}}}, "empty"},
		{"no copies", []*tokenimv1.Envelope{cp()}, []*tokenimv1.SharedCiphertext{{Ciphertext: []byte("x")}}, "no copies"},
		{"own ciphertext", nil, []*tokenimv1.SharedCiphertext{{Ciphertext: []byte("x"), Copies: []*tokenimv1.Envelope{cp(), own}}}, "copy 1 carries a ciphertext"},
	} {
		_, err := expandShared(tc.plain, tc.shared)
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
