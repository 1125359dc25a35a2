package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/nodeauth"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestClientBadInput(t *testing.T) {
	ctx := ctxT(t)
	alice, aliceHome := newUser(t, "alice")
	cases := []struct {
		name string
		run  func() error
		want error
	}{
		{"unknown handle", func() error { _, err := alice.Send(ctx, "@nobody_here", "hi"); return err }, client.ErrUnknownHandle},
		{"malformed handle", func() error { _, err := alice.Send(ctx, "@no!", "hi"); return err }, client.ErrInvalidHandle},
		{"handle taken", func() error {
			_, err := client.Create(ctx, cfg(t.TempDir()), strings.ToUpper(alice.Handle()))
			return err
		}, client.ErrHandleTaken},
		{"malformed handle at create", func() error { _, err := client.Create(ctx, cfg(t.TempDir()), "x"); return err }, client.ErrInvalidHandle},
		{"message over the cap", func() error {
			_, err := alice.Send(ctx, alice.Handle(), strings.Repeat("x", client.MaxTextBytes+1))
			return err
		}, client.ErrTooLarge},
		{"empty message", func() error { _, err := alice.Send(ctx, alice.Handle(), ""); return err }, client.ErrEmpty},
		{"wrong passphrase", func() error {
			c := cfg(aliceHome)
			c.Passphrase = []byte("wrong")
			alice.Close() // release the lock so the passphrase is what fails
			_, err := client.Open(ctx, c)
			return err
		}, client.ErrWrongPassphrase},
		{"node unreachable", func() error {
			c := cfg(t.TempDir())
			c.NodeURL = "http://" + freeAddr()
			_, err := client.Create(ctx, c, uniqueHandle("zed"))
			return err
		}, client.ErrNodeUnreachable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.run(); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	ctx := ctxT(t)
	_, home := newUser(t, "erin")
	if _, err := client.Open(ctx, cfg(home)); !errors.Is(err, client.ErrLocked) {
		t.Fatalf("second open of a home in use: %v", err)
	}
}

// Transactions that fail to decode, are replayed, reordered, or are signed
// by the wrong key are refused on chain with their codes.
func TestLedgerRejectsBadTx(t *testing.T) {
	ctx := ctxT(t)
	nodeAPI := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, tn.url())
	st, err := nodeAPI.Status(ctx, connect.NewRequest(&tokenimv1.StatusRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	chain := st.Msg.ChainId
	broadcast := func(raw []byte) uint32 {
		t.Helper()
		res, err := nodeAPI.BroadcastTx(ctx, connect.NewRequest(&tokenimv1.BroadcastTxRequest{Tx: raw}))
		if err != nil {
			t.Fatalf("broadcast: %v", err)
		}
		return res.Msg.Code
	}
	u := newRawUser(t, uniqueHandle("raw"))
	if code := broadcast(u.register(t, chain, st.Msg.PowDifficulty)); code != ledger.CodeOK {
		t.Fatalf("register: code %d", code)
	}
	rot1 := u.rotate(t, chain, 1, 2)
	_, mallory, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := ledger.SignTx(u.rotateBody(t, chain, 1, 3), mallory)
	cases := []struct {
		name string
		raw  []byte
		want uint32
	}{
		{"garbage", []byte("not a transaction"), ledger.CodeDecode},
		{"signed by another key", forged, ledger.CodeBadSignature},
		{"reordered (sequence from the future)", u.rotate(t, chain, 5, 4), ledger.CodeBadSequence},
		{"valid rotation", rot1, ledger.CodeOK},
		{"replay of the same bytes", rot1, ledger.CodeBadSequence},
		{"old sequence, new content", u.rotate(t, chain, 1, 6), ledger.CodeBadSequence},
		{"registration again", u.register(t, chain, st.Msg.PowDifficulty), ledger.CodeHandleTaken},
	}
	for _, c := range cases {
		if code := broadcast(c.raw); code != c.want {
			t.Errorf("%s: code %d, want %d", c.name, code, c.want)
		}
	}
}

// The relay refuses undecodable requests, unauthenticated calls and answers
// signed by the wrong key.
func TestRelayRejectsBadInput(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "gina")
	relayAPI := tokenimv1connect.NewRelayServiceClient(http.DefaultClient, tn.url())

	// Not protobuf at all.
	resp, err := http.Post(tn.url()+tokenimv1connect.RelayServiceSendProcedure, "application/proto", bytes.NewReader([]byte{0xff, 0xff, 0xff}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("undecodable send accepted")
	}
	// No session.
	_, err = relayAPI.Send(ctx, connect.NewRequest(&tokenimv1.SendRequest{Envelopes: []*tokenimv1.Envelope{{Id: make([]byte, 16), To: alice.Handle(), Type: 2, Ciphertext: []byte{1}}}}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("send without session: %v", err)
	}
	// A challenge answered with the wrong key.
	ch, err := relayAPI.Challenge(ctx, connect.NewRequest(&tokenimv1.ChallengeRequest{Handle: alice.Handle()}))
	if err != nil {
		t.Fatal(err)
	}
	_, wrong, _ := ed25519.GenerateKey(rand.Reader)
	_, err = relayAPI.Authenticate(ctx, connect.NewRequest(&tokenimv1.AuthenticateRequest{
		Handle: alice.Handle(), Nonce: ch.Msg.Nonce, Signature: nodeauth.Sign(wrong, ch.Msg.NodeId, ch.Msg.Nonce)}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("wrong-key answer: %v", err)
	}
}

// An envelope sent twice (a retry, or a replay by someone holding the
// session) is stored and delivered once; one with a field the schema does
// not define is refused, not stored and forwarded.
func TestRelayDedupAndStrictDecoding(t *testing.T) {
	ctx := ctxT(t)
	bob, _ := newUser(t, "jack")
	token := newRawUser(t, uniqueHandle("replayer")).session(t)
	relayAPI := tokenimv1connect.NewRelayServiceClient(http.DefaultClient, tn.url())
	env := &tokenimv1.Envelope{Id: []byte("0123456789abcdef"), To: bob.Handle(), Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE, Ciphertext: []byte("opaque")}
	for i := range 2 {
		req := connect.NewRequest(&tokenimv1.SendRequest{Envelopes: []*tokenimv1.Envelope{env}})
		req.Header().Set("Authorization", "Bearer "+token)
		res, err := relayAPI.Send(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if dup := len(res.Msg.Duplicates) == 1; dup != (i == 1) {
			t.Fatalf("send %d: duplicates %x", i, res.Msg.Duplicates)
		}
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].State != client.StateUndecryptable {
		t.Fatalf("bob got %d messages (%v); want the one envelope, once, as undecryptable", len(got), got)
	}

	body := codec.MustMarshal(&tokenimv1.SendRequest{Envelopes: []*tokenimv1.Envelope{{Id: []byte("fedcba9876543210"), To: bob.Handle(), Type: 2, Ciphertext: []byte("x")}}})
	body = protowire.AppendTag(body, 99, protowire.VarintType)
	body = protowire.AppendVarint(body, 1)
	hreq, _ := http.NewRequest(http.MethodPost, tn.url()+tokenimv1connect.RelayServiceSendProcedure, bytes.NewReader(body))
	hreq.Header.Set("Content-Type", "application/proto")
	hreq.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("a request with an unknown field was accepted")
	}
	if again, _ := bob.Sync(ctx); len(again) != 0 {
		t.Fatalf("the refused envelope was delivered: %v", again)
	}
}
