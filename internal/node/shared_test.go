package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
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

// oldPeer answers Replicate as a node from before shared ciphertexts:
// invalid argument for the unknown field; envelopes in full are stored.
type oldPeer struct {
	tokenimv1connect.UnimplementedPeerServiceHandler
	mu       sync.Mutex
	refused  int
	requests [][]*tokenimv1.Envelope
}

func (o *oldPeer) Replicate(_ context.Context, req *connect.Request[tokenimv1.ReplicateRequest]) (*connect.Response[tokenimv1.ReplicateResponse], error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(req.Msg.Shared) > 0 {
		o.refused++
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("proto: unknown field 2"))
	}
	o.requests = append(o.requests, req.Msg.Envelopes)
	return connect.NewResponse(&tokenimv1.ReplicateResponse{Duplicates: [][]byte{req.Msg.Envelopes[0].Id}}), nil
}

// A peer that predates shared ciphertexts gets a packed request's
// envelopes in full, at most 512 per request; its duplicates come back.
func TestReplicateToAnOldPeer(t *testing.T) {
	old := &oldPeer{}
	mux := http.NewServeMux()
	mux.Handle(tokenimv1connect.NewPeerServiceHandler(old))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	n := &Node{peers: newPeerClients("me", key)}
	ct := randBytes(1000)
	var envs []*tokenimv1.Envelope
	for i := range 700 {
		envs = append(envs, &tokenimv1.Envelope{Id: randBytes(16), To: fmt.Sprintf("m%d", i), Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP, Group: "g", Ciphertext: ct})
	}
	req := &tokenimv1.ReplicateRequest{}
	req.Envelopes, req.Shared = packShared(envs)
	dups, err := n.replicateTo(t.Context(), srv.URL, envs, req)
	if err != nil {
		t.Fatal(err)
	}
	if old.refused != 1 || len(old.requests) != 2 || len(old.requests[0]) != 512 || len(old.requests[1]) != 188 {
		t.Fatalf("refused %d, then %d requests", old.refused, len(old.requests))
	}
	for i, e := range append(old.requests[0], old.requests[1]...) {
		if !proto.Equal(e, envs[i]) {
			t.Fatalf("envelope %d arrived different", i)
		}
	}
	if len(dups) != 2 || !bytes.Equal(dups[0], envs[0].Id) || !bytes.Equal(dups[1], envs[512].Id) {
		t.Fatalf("duplicates: %x", dups)
	}
}
