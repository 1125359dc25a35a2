package e2e

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/ledger"
	"google.golang.org/protobuf/proto"
)

// threeInAGroup registers three accounts (base+"a", "b", "c"); the first
// creates a group (default policy) with the other two.
func threeInAGroup(t *testing.T, base string) (a, b, c *client.Client, group string) {
	t.Helper()
	a, _ = newUser(t, base+"a")
	b, _ = newUser(t, base+"b")
	c, _ = newUser(t, base+"c")
	group = uniqueHandle(base + "group")
	if err := a.CreateGroup(ctxT(t), group, []string{b.Handle(), c.Handle()}, ""); err != nil {
		t.Fatal(err)
	}
	return a, b, c, group
}

// A group's member list is provable at any past height: after a removal the
// chain still proves who was a member of the closed epoch, as the block
// before the removal left it. Before the group existed it is proven absent;
// an answer for one height does not pass for another, nor with a changed
// byte.
func TestGroupProofAtHeight(t *testing.T) {
	ctx := ctxT(t)
	alice, bob, carol, group := threeInAGroup(t, "gh")
	if err := alice.GroupRemove(ctx, group, carol.Handle()); err != nil {
		t.Fatal(err)
	}
	now, pr, err := bob.ProveGroup(ctx, group, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ledger.Role(now, carol.Handle()) != "" || ledger.Role(now, bob.Handle()) != ledger.RoleMember || now.Epoch != 1 || pr.SignedPower != pr.TotalPower {
		t.Fatalf("now: %v %+v", now, pr)
	}
	at, ok := ledger.EpochHeight(now, 0)
	if !ok || at < now.CreatedHeight {
		t.Fatalf("epoch 0 ended at %d (%v), created at %d", at, ok, now.CreatedHeight)
	}
	then, pr, err := bob.ProveGroup(ctx, group, at)
	if err != nil {
		t.Fatal(err)
	}
	if ledger.Role(then, carol.Handle()) != ledger.RoleMember || then.Epoch != 0 || pr.Height != at+1 {
		t.Fatalf("at %d: %v %+v", at, then, pr)
	}
	if eps, err := bob.ClosedEpochs(ctx, now); err != nil || len(eps) != 1 || eps[0].ClosedAt != at+1 || len(eps[0].Members) != 3 || eps[0].Proven.Height != at+1 {
		t.Fatalf("closed epochs: %+v %v", eps, err)
	}
	if _, pr, err := bob.ProveGroup(ctx, group, now.CreatedHeight-1); !errors.Is(err, client.ErrUnknownGroup) || pr == nil {
		t.Fatalf("before it was created: %v", err)
	}

	api := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, tn.url())
	res, err := api.GetStateProof(ctx, connect.NewRequest(&tokenimv1.GetStateProofRequest{What: "group/" + group, Height: at}))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bob.CheckGroupProof(ctx, group, at, res.Msg); err != nil {
		t.Fatalf("the answer: %v", err)
	}
	if _, _, err := bob.CheckGroupProof(ctx, group, at-1, res.Msg); !errors.Is(err, client.ErrUnproven) {
		t.Fatalf("the answer for block %d as one for block %d: %v", at, at-1, err)
	}
	if _, _, err := bob.CheckGroupProof(ctx, group, 0, res.Msg); !errors.Is(err, client.ErrUnproven) {
		t.Fatalf("a past answer as the latest: %v", err)
	}
	forged := proto.Clone(res.Msg).(*tokenimv1.GetStateProofResponse)
	forged.Value[len(forged.Value)-1] ^= 1
	if _, _, err := bob.CheckGroupProof(ctx, group, at, forged); !errors.Is(err, client.ErrUnproven) {
		t.Fatalf("a changed value: %v", err)
	}
	for _, bad := range []*tokenimv1.GetStateProofRequest{
		{What: "group/No Such", Height: at}, {What: "grp/" + group}, {What: "group/" + group, Height: -1},
	} {
		if _, err := api.GetStateProof(ctx, connect.NewRequest(bad)); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("%v: %v", bad, err)
		}
	}
	if _, err := api.GetStateProof(ctx, connect.NewRequest(&tokenimv1.GetStateProofRequest{What: "group/" + group, Height: 1 << 40})); connect.CodeOf(err) != connect.CodeOutOfRange {
		t.Fatalf("a future height: %v", err)
	}
}

// A member who posted and then left still has that post read by a member
// who syncs later: its sender key, of the epoch its leaving closed, is
// checked against the member list the chain proves for that epoch.
func TestGroupLeaverReadLater(t *testing.T) {
	ctx := ctxT(t)
	_, bob, carol, group := threeInAGroup(t, "gl")
	if _, err := bob.SendGroup(ctx, group, "before I go"); err != nil {
		t.Fatal(err)
	}
	if err := bob.GroupLeave(ctx, group); err != nil {
		t.Fatal(err)
	}
	if got := groupTexts(t, carol, group); len(got) != 1 || got[0] != bob.Handle()+": before I go" {
		t.Fatalf("carol got %q", got)
	}
	if h, _ := carol.History(func(m *client.Message) bool { return m.State == client.StateRejected }); len(h) != 0 {
		t.Fatalf("carol rejected %+v", h)
	}
}

// ghostNode is a node that slips a member into the groups it shows (and
// proves) to its client (the "ghost member" attack: the sender would hand its sender key
// to an account the group never added).
type ghostNode struct {
	ghost string
	on    atomic.Bool
	seen  atomic.Int32
}

func (gn *ghostNode) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	proof, plain := strings.HasSuffix(r.URL.Path, "/GetStateProof"), strings.HasSuffix(r.URL.Path, "/GetGroup")
	if err != nil || !gn.on.Load() || !proof && !plain || res.StatusCode != http.StatusOK {
		return res, err
	}
	var body io.Reader = res.Body
	if res.Header.Get("Content-Encoding") == "gzip" {
		if body, err = gzip.NewReader(res.Body); err != nil {
			return nil, err
		}
		res.Header.Del("Content-Encoding")
	}
	raw, err := io.ReadAll(body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	var group tokenimv1.GetGroupResponse
	if err := proto.Unmarshal(raw, &group); plain && err == nil && group.Group != nil {
		group.Group.Members = append(group.Group.Members, &tokenimv1.GroupMember{Handle: gn.ghost, Role: ledger.RoleMember})
		raw, _ = proto.Marshal(&group)
		gn.seen.Add(1)
	}
	var msg tokenimv1.GetStateProofResponse
	if err := proto.Unmarshal(raw, &msg); proof && err == nil && len(msg.Value) > 0 {
		if g, err := ledger.DecodeGroupValue(msg.Value); err == nil {
			g.Members = append(g.Members, &tokenimv1.GroupMember{Handle: gn.ghost, Role: ledger.RoleMember})
			enc, _ := codec.Marshal(g)
			msg.Value = append([]byte{msg.Value[0]}, enc...) // the state's format byte, then the record
			raw, _ = proto.Marshal(&msg)
			gn.seen.Add(1)
		}
	}
	res.Body, res.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
	res.Header.Set("Content-Length", strconv.Itoa(len(raw)))
	return res, nil
}

// A node that adds a ghost to a group's member list cannot make a member's
// client hand it the sender key: the list is proven against the chain, the
// forged one does not verify, and the post is not sent; the ghost gets
// nothing. Through an honest node the same post goes to the real members.
func TestGhostMemberRefused(t *testing.T) {
	ctx := ctxT(t)
	mallory, _ := newUser(t, "ghm")
	gn := &ghostNode{ghost: mallory.Handle()}
	alice := newUserVia(t, "gha", gn)
	bob, _ := newUser(t, "ghb")
	group := uniqueHandle("ghost")
	if err := alice.CreateGroup(ctx, group, []string{bob.Handle()}, ""); err != nil {
		t.Fatal(err)
	}
	gn.on.Store(true)
	if _, err := alice.SendGroup(ctx, group, "for members"); !errors.Is(err, client.ErrUnproven) || gn.seen.Load() == 0 {
		t.Fatalf("send through a node forging the member list: %v (forged %d answers)", err, gn.seen.Load())
	}
	if ms, err := mallory.Sync(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("the ghost got %d messages (%v)", len(ms), err)
	}
	gn.on.Store(false)
	if _, err := alice.SendGroup(ctx, group, "for members"); err != nil {
		t.Fatal(err)
	}
	if got := groupTexts(t, bob, group); len(got) != 1 || got[0] != alice.Handle()+": for members" {
		t.Fatalf("bob got %q", got)
	}
	if ms, err := mallory.Sync(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("the ghost got %d messages (%v)", len(ms), err)
	}
}

// An account's keys are provable at a past height too: after a rotation
// the chain still proves the signed prekey the account had before it.
func TestAccountProofAtHeight(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "aha")
	bob, _ := newUser(t, "ahb")
	before, pr, err := alice.ProveAccount(ctx, bob.Handle())
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.RotateSignedPrekey(ctx); err != nil {
		t.Fatal(err)
	}
	now, _, err := alice.ProveAccount(ctx, bob.Handle())
	if err != nil {
		t.Fatal(err)
	}
	then, prThen, err := alice.ProveAccountAt(ctx, bob.Handle(), pr.Height-1)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(then, before) || proto.Equal(then, now) || prThen.Height != pr.Height {
		t.Fatalf("at %d: %v (before %v, now %v), proven by block %d", pr.Height-1, then, before, now, prThen.Height)
	}
}
