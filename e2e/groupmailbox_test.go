package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/relay"
)

// What the node does with bad group-mailbox input: a clear error, and
// nothing stored.
func TestGroupMailboxBadInput(t *testing.T) {
	ctx := ctxT(t)
	tap := &tokenTap{}
	mallory := newUserVia(t, "gbm", tap)
	alice, bob, _, group := threeInAGroup(t, "gbi")
	if _, err := alice.SendGroup(ctx, group, "members only"); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.Sync(ctx); err != nil { // authenticates: the tap has a token
		t.Fatal(err)
	}
	token := tap.get()
	api := tokenimv1connect.NewRelayServiceClient(http.DefaultClient, tn.url())
	authed := func(h http.Header) { h.Set("Authorization", "Bearer "+token) }
	post := func(g string) *tokenimv1.Envelope { return rawPost(g, "mallory_friend") }
	send := func(e *tokenimv1.Envelope) error { return sendAs(ctx, token, e) }
	mb := relay.GroupMailbox(group)
	before, _ := tn.n.Relay().Read(mb, 0, 0)
	for _, tc := range []struct {
		what string
		env  *tokenimv1.Envelope
		code connect.Code
		says string
	}{
		{"a post by a non-member", post(group), connect.CodePermissionDenied, "rule can_post"},
		{"a post to a group that does not exist", post("no_such_group_" + group), connect.CodeNotFound, "unknown group"},
		{"a post to a malformed group name", post("Not A Group!"), connect.CodeInvalidArgument, "group"},
	} {
		err := send(tc.env)
		if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Fatalf("%s: %v (want %v naming %q)", tc.what, err, tc.code, tc.says)
		}
	}
	// A refusal says which chain state decided it (replayable at that height).
	h := tn.n.Height()
	err := send(post(group))
	var at int64
	if _, scanErr := fmt.Sscanf(err.Error()[strings.LastIndex(err.Error(), "(decided"):], "(decided on the chain's state at height %d)", &at); scanErr != nil || at < h || at > h+5 {
		t.Fatalf("the refusal names height %d (%v), the chain is at %d: %v", at, scanErr, h, err)
	}
	if after, _ := tn.n.Relay().Read(mb, 0, 0); len(after) != len(before) {
		t.Fatalf("refused posts were stored: %d posts, was %d", len(after), len(before))
	}

	// A non-member naming the group in its Receive gets nothing of it.
	req := connect.NewRequest(&tokenimv1.ReceiveRequest{Groups: []*tokenimv1.GroupPosition{{Group: group}}})
	authed(req.Header())
	s, err := api.Receive(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for s.Receive() && !s.Msg().GetCaughtUp() {
		if d := s.Msg().GetDelivery(); d.GetGroup() == group {
			t.Fatalf("a non-member got a post of %s", group)
		}
	}
	s.Close()

	// Receive naming too many groups, or a malformed one, is refused.
	var many []*tokenimv1.GroupPosition
	for i := range 1025 {
		many = append(many, &tokenimv1.GroupPosition{Group: fmt.Sprintf("g%d", i)})
	}
	for _, groups := range [][]*tokenimv1.GroupPosition{many, {{Group: "Bad Name"}}} {
		req := connect.NewRequest(&tokenimv1.ReceiveRequest{Groups: groups})
		authed(req.Header())
		s, err := api.Receive(ctx, req)
		if err == nil {
			s.Receive()
			err = s.Err()
			s.Close()
		}
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("Receive naming %d groups (%q…): %v", len(groups), groups[0].Group, err)
		}
	}

	// An Ack in a group that does not exist leaves nothing behind.
	ack := connect.NewRequest(&tokenimv1.AckRequest{Cursor: 5, Group: "no_such_group_" + group})
	authed(ack.Header())
	if _, err := api.Ack(ctx, ack); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("an Ack in a group that does not exist: %v", err)
	}
	if p, err := tn.n.Relay().Position(relay.GroupMailbox("no_such_group_"+group), mallory.Handle()); err != nil || p != 0 {
		t.Fatalf("a read position was stored: %d %v", p, err)
	}
	// bob still reads the post.
	if got := groupTexts(t, bob, group); len(got) != 1 {
		t.Fatalf("bob got %q", got)
	}
}

// The node decides a post's readers: a list the sender sends is ignored.
func TestGroupPostReadersAreTheNodes(t *testing.T) {
	ctx := ctxT(t)
	tap := &tokenTap{}
	alice := newUserVia(t, "gra", tap)
	bob, _ := newUser(t, "grb")
	carol, _ := newUser(t, "grc")
	group := uniqueHandle("readers")
	if err := alice.CreateGroup(ctx, group, []string{bob.Handle(), carol.Handle()}, ""); err != nil {
		t.Fatal(err)
	}
	if err := sendAs(ctx, tap.get(), rawPost(group, "someone_else")); err != nil {
		t.Fatal(err)
	}
	ds, err := tn.n.Relay().Read(relay.GroupMailbox(group), 0, 0)
	if err != nil || len(ds) != 1 {
		t.Fatalf("%d posts stored, %v", len(ds), err)
	}
	want := []string{bob.Handle(), carol.Handle()}
	slices.Sort(want)
	if got := ds[0].Envelope.Readers; !slices.Equal(got, want) {
		t.Fatalf("readers %v, want %v (the members but the sender)", got, want)
	}
}

// rawPost is a group post with a random id and ciphertext, naming readers
// of its own (the node ignores them).
func rawPost(group string, readers ...string) *tokenimv1.Envelope {
	id, ct := make([]byte, 16), make([]byte, 300)
	rand.Read(id)
	rand.Read(ct)
	return &tokenimv1.Envelope{Id: id, Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP, Group: group, Ciphertext: ct, Readers: readers}
}

// sendAs sends envelopes straight to the node's API with a session token.
func sendAs(ctx context.Context, token string, envs ...*tokenimv1.Envelope) error {
	req := connect.NewRequest(&tokenimv1.SendRequest{Envelopes: envs})
	req.Header().Set("Authorization", "Bearer "+token)
	_, err := tokenimv1connect.NewRelayServiceClient(http.DefaultClient, tn.url()).Send(ctx, req)
	return err
}
