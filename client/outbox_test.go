package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/keystore"
	"github.com/tokenim/tokenim/internal/relay"
	"github.com/tokenim/tokenim/internal/signalstore"
	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/util/keyhelper"
	"google.golang.org/protobuf/proto"
)

// A node's answers map to the errors a caller branches on: a node that is
// up but could not store on enough replicas is ErrNotStored, other
// unavailability ErrNodeUnreachable; both are worth a retry (the outbox
// keeps the message), a refusal is not.
func TestSendErrors(t *testing.T) {
	c := &Client{cfg: Config{NodeURL: "http://127.0.0.1:1"}}
	noQuorum := connect.NewError(connect.CodeUnavailable, errors.New("envelope not stored on a majority of its replicas: 1 of 3 stored, need 2"))
	noQuorum.Meta().Set(relay.ReasonHeader, relay.ReasonReplicas)
	for _, tc := range []struct {
		name      string
		err       error
		is        error
		retryable bool
	}{
		{"replicas down", noQuorum, ErrNotStored, true},
		{"node down", connect.NewError(connect.CodeUnavailable, errors.New("dial tcp: connection refused")), ErrNodeUnreachable, true},
		{"deadline", connect.NewError(connect.CodeDeadlineExceeded, context.DeadlineExceeded), nil, true},
		{"cut short", connect.NewError(connect.CodeCanceled, context.Canceled), nil, true},
		{"policy", connect.NewError(connect.CodePermissionDenied, errors.New("rule can_post: false")), nil, false},
		{"bad envelope", connect.NewError(connect.CodeInvalidArgument, errors.New("recipient")), nil, false},
	} {
		err := c.netErr("send", tc.err)
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v is not %v", tc.name, err, tc.is)
		}
		if got := retryable(err); got != tc.retryable {
			t.Errorf("%s: retryable %v, want %v", tc.name, got, tc.retryable)
		}
		if q := fmt.Errorf("%w: %w", ErrQueued, err); !errors.Is(q, ErrQueued) || (tc.is != nil && !errors.Is(q, tc.is)) {
			t.Errorf("%s: the queued error loses its cause: %v", tc.name, q)
		}
	}
	if !errors.Is(c.netErr("send", noQuorum), ErrNotStored) || errors.Is(c.netErr("send", noQuorum), ErrNodeUnreachable) {
		t.Error("a node that is up is reported unreachable")
	}
	if err := deniedErr(connect.NewError(connect.CodePermissionDenied, errors.New("rule can_post: false"))); !errors.Is(err, ErrDenied) {
		t.Errorf("a policy refusal: %v", err)
	}
}

// fakeRelay takes Send requests as it is told: all, the first ok ones, or
// none (its replicas down); refuse refuses a recipient for good.
type fakeRelay struct {
	tokenimv1connect.UnimplementedRelayServiceHandler
	mu     sync.Mutex
	ok     int // requests still taken; < 0: all
	refuse string
	taken  []string // recipient and first envelope id of each taken request
}

func (f *fakeRelay) Send(_ context.Context, req *connect.Request[tokenimv1.SendRequest]) (*connect.Response[tokenimv1.SendResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := req.Msg.GetEnvelopes()
	if len(e) == 0 {
		e = req.Msg.Shared[0].Copies
	}
	if e[0].To == f.refuse {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("rule can_post: false"))
	}
	if f.ok == 0 {
		ce := connect.NewError(connect.CodeUnavailable, errors.New("envelope not stored on a majority of its replicas"))
		ce.Meta().Set(relay.ReasonHeader, relay.ReasonReplicas)
		return nil, ce
	}
	f.ok--
	f.taken = append(f.taken, e[0].To+"/"+string(e[0].Id))
	return connect.NewResponse(&tokenimv1.SendResponse{}), nil
}

func (f *fakeRelay) set(ok int, refuse string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ok, f.refuse, f.taken = ok, refuse, nil
}

func (f *fakeRelay) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.taken)
}

// The outbox sends each conversation's queued messages in order, a group
// message's requests each once (what went out before a failure is not sent
// again), keeps what cannot go yet, and marks failed what is refused.
func TestOutbox(t *testing.T) {
	fake := &fakeRelay{}
	c := outboxClient(t, fake, nil)
	var hooked []string
	c.OnOutboxSent(func(m Message) { hooked = append(hooked, m.ID) })
	ctx := context.Background()

	queue := func(id, to, group string, requests int) {
		t.Helper()
		m := &Message{ID: id, To: to, Group: group, Outgoing: true, Text: id}
		conv := "@" + to
		if group != "" {
			conv = group
		}
		var reqs []*tokenimv1.SendRequest
		for i := range requests {
			reqs = append(reqs, &tokenimv1.SendRequest{Envelopes: []*tokenimv1.Envelope{{Id: fmt.Appendf(nil, "%s.%d", id, i), To: to}}})
		}
		if err := c.queue(m, conv, reqs, nil); !errors.Is(err, ErrQueued) {
			t.Fatalf("queue %s: %v", id, err)
		}
	}
	state := func(id string) string {
		t.Helper()
		m, err := c.message(id)
		if err != nil {
			t.Fatal(err)
		}
		return m.State
	}
	queue("a1", "bob", "", 1)
	queue("g1", "carol", "team", 3)
	queue("a2", "bob", "", 1)

	fake.set(0, "")
	if n, err := c.FlushOutbox(ctx); n != 0 || !errors.Is(err, ErrNotStored) {
		t.Fatalf("flush with the replicas down: %d %v", n, err)
	}
	if n, _ := c.Queued(); n != 3 || state("a1") != StateQueued {
		t.Fatalf("queued %d, a1 %s", n, state("a1"))
	}

	// a1, a2 and the first of g1's three requests go; then the replicas fail.
	fake.set(3, "")
	if n, err := c.FlushOutbox(ctx); n != 2 || !retryable(err) {
		t.Fatalf("flush of 3 requests: %d %v", n, err)
	}
	if got, want := fake.got(), []string{"bob/a1.0", "bob/a2.0", "carol/g1.0"}; !slices.Equal(got, want) {
		t.Fatalf("sent %q, want %q", got, want)
	}
	if state("a1") != StateStored || state("a2") != StateStored || state("g1") != StateQueued {
		t.Fatalf("states a1 %s a2 %s g1 %s", state("a1"), state("a2"), state("g1"))
	}
	fake.set(-1, "")
	if n, err := c.FlushOutbox(ctx); n != 1 || err != nil {
		t.Fatalf("flush of the rest: %d %v", n, err)
	}
	if got, want := fake.got(), []string{"carol/g1.1", "carol/g1.2"}; !slices.Equal(got, want) {
		t.Fatalf("sent %q, want %q (nothing twice)", got, want)
	}
	if n, _ := c.Queued(); n != 0 || state("g1") != StateStored || !slices.Equal(hooked, []string{"a1", "a2", "g1"}) {
		t.Fatalf("queued %d, g1 %s, hooked %q", n, state("g1"), hooked)
	}

	// A conversation that cannot go does not hold up another; a refused
	// message is marked failed and leaves the outbox.
	queue("d1", "dan", "", 1)
	queue("e1", "eve", "", 1)
	fake.set(-1, "dan")
	if n, err := c.FlushOutbox(ctx); n != 1 || !errors.Is(err, ErrDenied) {
		t.Fatalf("flush with dan refused: %d %v", n, err)
	}
	if n, _ := c.Queued(); n != 0 || state("d1") != StateFailed || state("e1") != StateStored {
		t.Fatalf("queued %d, d1 %s, e1 %s", n, state("d1"), state("e1"))
	}
	// A message whose conversation has queued ones waits behind them.
	queue("f1", "fay", "", 1)
	fake.set(0, "")
	waiting, why, err := c.flushConversation(ctx, "@fay")
	if !waiting || !errors.Is(why, ErrNotStored) || err != nil {
		t.Fatalf("fay's conversation: waiting %v, why %v, err %v", waiting, why, err)
	}
	if waiting, _, err := c.flushConversation(ctx, "@gus"); waiting || err != nil {
		t.Fatalf("an empty conversation waits: %v %v", waiting, err)
	}
}

// outboxClient is ann's client of a node whose relay is fake and whose node
// service is down while down is set (nil: never).
func outboxClient(t *testing.T, fake *fakeRelay, down *atomic.Bool) *Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(tokenimv1connect.NewRelayServiceHandler(fake))
	path, node := tokenimv1connect.NewNodeServiceHandler(tokenimv1connect.UnimplementedNodeServiceHandler{})
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down != nil && down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		node.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &Client{cfg: Config{NodeURL: srv.URL}, secrets: &keystore.Secrets{Handle: "ann"}, store: testStore(t), token: "t", tokenTo: time.Now().Add(time.Hour),
		node:  tokenimv1connect.NewNodeServiceClient(http.DefaultClient, srv.URL),
		relay: tokenimv1connect.NewRelayServiceClient(http.DefaultClient, srv.URL)}
}

// A first message to someone, written while the network cannot give her
// keys, is kept unsealed, and the next one behind it; both wait while the
// network is down and, refused once it answers (here: it knows no such
// account), are marked failed and leave the outbox.
func TestOutboxDraft(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	c := outboxClient(t, &fakeRelay{ok: -1}, &down)
	ctx := context.Background()
	var ids []string
	for _, text := range []string{"hello hal", "are you there?"} {
		m, err := c.Send(ctx, "hal", text)
		if !errors.Is(err, ErrQueued) || !errors.Is(err, ErrNodeUnreachable) || m == nil || m.State != StateQueued || m.Text != text {
			t.Fatalf("send %q, the network down: %+v %v", text, m, err)
		}
		ids = append(ids, m.ID)
	}
	if n, err := c.FlushOutbox(ctx); n != 0 || !retryable(err) {
		t.Fatalf("flush, the network down: %d %v", n, err)
	}
	if n, _ := c.Queued(); n != 2 {
		t.Fatalf("queued %d, want 2", n)
	}
	down.Store(false)
	if n, err := c.FlushOutbox(ctx); n != 0 || err == nil || retryable(err) {
		t.Fatalf("flush, the network refusing: %d %v", n, err)
	}
	for _, id := range ids {
		if m, err := c.message(id); err != nil || m.State != StateFailed {
			t.Fatalf("message %s: %+v %v", id, m, err)
		}
	}
	if n, _ := c.Queued(); n != 0 {
		t.Fatalf("queued %d after the refusal", n)
	}
}

// testStore is a fresh Signal store, closed when the test ends.
func testStore(t *testing.T) *signalstore.Store {
	t.Helper()
	ik, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	st, err := signalstore.Open(filepath.Join(t.TempDir(), "signal.db"), [32]byte{1}, ik, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A registration sent again carries the signed prekey of the first: the
// same public key, signed by the identity key (a loaded libsignal record
// alone would give another public key).
func TestFirstSignedPrekeyAgain(t *testing.T) {
	st := testStore(t)
	c := &Client{store: st, secrets: &keystore.Secrets{IdentityKeyPair: st.GetIdentityKeyPair()}}
	ctx := context.Background()
	first, err := c.firstSignedPrekey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.firstSignedPrekey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(first, again) {
		t.Fatalf("first %x, again %x", first.PublicKey, again.PublicKey)
	}
	key, err := ecc.DecodePoint(again.PublicKey, 0)
	if err != nil || !ecc.VerifySignature(st.GetIdentityKeyPair().PublicKey().PublicKey(), again.PublicKey, [64]byte(again.Signature)) {
		t.Fatalf("the signed prekey sent again does not verify: %v %v", key, err)
	}
}
