package e2e

import (
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/loadgen"
)

// TestAckStream: Acks sent on one AckStream are applied in order, each
// deleting the caller's envelopes up to its cursor; an Ack below an earlier
// one changes nothing; a stream without a token is refused and deletes
// nothing.
func TestAckStream(t *testing.T) {
	ctx := ctxT(t)
	accts, err := loadgen.Register(ctx, tn.url(), uniqueHandle("acks"), 2)
	if err != nil {
		t.Fatal(err)
	}
	sender, reader := accts[0], accts[1]
	api := tokenimv1connect.NewRelayServiceClient(http.DefaultClient, tn.url()) // HTTP/1.1, as the client's
	var envs []*tokenimv1.Envelope
	for range 6 {
		id, ct := make([]byte, 16), make([]byte, 64)
		rand.Read(id)
		rand.Read(ct)
		envs = append(envs, &tokenimv1.Envelope{Id: id, To: reader.Handle, Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE, Ciphertext: ct})
	}
	req := connect.NewRequest(&tokenimv1.SendRequest{Envelopes: envs})
	req.Header().Set("Authorization", "Bearer "+sender.Token)
	if _, err := api.Send(ctx, req); err != nil {
		t.Fatal(err)
	}
	waiting := func() []uint64 {
		t.Helper()
		ds, err := tn.n.Relay().Read(reader.Handle, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var cs []uint64
		for _, d := range ds {
			cs = append(cs, d.Cursor)
		}
		return cs
	}
	cursors := waiting()
	if len(cursors) != 6 {
		t.Fatalf("reader's mailbox: %v", cursors)
	}

	// No token: refused, nothing deleted.
	anon := api.AckStream(ctx)
	anon.Send(&tokenimv1.AckRequest{Cursor: cursors[5]})
	if _, err := anon.CloseAndReceive(); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("AckStream without a token: %v", err)
	}
	if got := waiting(); len(got) != 6 {
		t.Fatalf("after a refused AckStream: %v", got)
	}

	s := api.AckStream(ctx)
	s.RequestHeader().Set("Authorization", "Bearer "+reader.Token)
	for _, c := range []uint64{cursors[1], cursors[3], cursors[2]} { // the last is below the one before
		if err := s.Send(&tokenimv1.AckRequest{Cursor: c}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CloseAndReceive(); err != nil {
		t.Fatal(err)
	}
	if got := waiting(); len(got) != 2 || got[0] != cursors[4] || got[1] != cursors[5] {
		t.Fatalf("after Acks to %d: waiting %v", cursors[3], got)
	}
}

// TestStreamsEndCleanlyWhenTheNodeStops: a node that stops ends its live
// Receive streams (the client sees an end, not a cut connection, and
// reconnects) instead of holding them until its shutdown times out.
func TestStreamsEndCleanlyWhenTheNodeStops(t *testing.T) {
	ctx := ctxT(t)
	accts, err := loadgen.Register(ctx, tn.url(), uniqueHandle("stop"), 1)
	if err != nil {
		t.Fatal(err)
	}
	api := tokenimv1connect.NewRelayServiceClient(http.DefaultClient, tn.url())
	req := connect.NewRequest(&tokenimv1.ReceiveRequest{})
	req.Header().Set("Authorization", "Bearer "+accts[0].Token)
	s, err := api.Receive(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Receive() || !s.Msg().GetCaughtUp() {
		t.Fatalf("no caught_up marker: %v", s.Err())
	}
	start := time.Now()
	tn.restart(t)
	t.Logf("restarted in %s", time.Since(start).Round(time.Millisecond))
	if s.Receive() {
		t.Fatalf("a delivery after the node stopped: %v", s.Msg())
	}
	if err := s.Err(); err != nil {
		t.Fatalf("the stream was cut, not ended: %v", err)
	}
}
