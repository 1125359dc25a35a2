package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/relay"
)

// tokenTap remembers the bearer token its client last sent, so a test can
// send as that account what its client never would.
type tokenTap struct {
	mu    sync.Mutex
	token string
}

func (tt *tokenTap) RoundTrip(r *http.Request) (*http.Response, error) {
	if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		tt.mu.Lock()
		tt.token = a
		tt.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// get returns the last token seen.
func (tt *tokenTap) get() string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.token
}

// newUserVia registers a fresh account whose client sends its requests
// through rt.
func newUserVia(t *testing.T, base string, rt http.RoundTripper) *client.Client {
	t.Helper()
	c := cfg(t.TempDir())
	c.HTTPClient = &http.Client{Transport: rt}
	u, err := client.Create(ctxT(t), c, uniqueHandle(base))
	if err != nil {
		t.Fatalf("create %s: %v", base, err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// can_read decides who gets a group's messages: the sender's client leaves
// out the members the policy does not let read (no sender key, no copy),
// and the node refuses a copy addressed to one, naming the rule — for a
// rule on roles (decided once per role at the node) and one on handles
// (decided per recipient).
func TestGroupCanRead(t *testing.T) {
	ctx := ctxT(t)
	tap := &tokenTap{}
	alice := newUserVia(t, "cra", tap)
	bob, _ := newUser(t, "crb")
	carol, _ := newUser(t, "crc")
	dave, _ := newUser(t, "crd")
	refused := func(env *tokenimv1.Envelope, who string) {
		t.Helper()
		err := sendAs(ctx, tap.get(), env)
		if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "rule can_read") || !strings.Contains(err.Error(), "@"+who) {
			t.Fatalf("a copy for %s: %v", who, err)
		}
	}
	noGroupMessages := func(u *client.Client, group string) {
		t.Helper()
		if _, err := u.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if h, _ := u.History(func(m *client.Message) bool { return m.Group == group }); len(h) != 0 {
			t.Fatalf("%s got %d messages of %s", u.Handle(), len(h), group)
		}
	}
	cases := []struct {
		rule     string
		setup    func(group string)
		excluded *client.Client
	}{
		{`can_read = target_role != "reader"`, func(group string) {
			if err := alice.GroupSetRole(ctx, group, carol.Handle(), "reader"); err != nil {
				t.Fatal(err)
			}
		}, carol},
		{`can_read = target != "` + dave.Handle() + `"`, func(string) {}, dave},
	}
	for i, tc := range cases {
		name := uniqueHandle("readers")
		if _, err := alice.DeployPolicy(ctx, name, tc.rule); err != nil {
			t.Fatal(err)
		}
		group := uniqueHandle("club")
		if err := alice.CreateGroup(ctx, group, []string{bob.Handle(), carol.Handle(), dave.Handle()}, name); err != nil {
			t.Fatal(err)
		}
		tc.setup(group)
		text := "members only " + name
		if _, err := alice.SendGroup(ctx, group, text); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		g, err := alice.Group(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		refused(groupCopyFor(t, group, bob.Handle(), tc.excluded.Handle(), g.Epoch), tc.excluded.Handle())
		if ds, _, err := tn.n.Relay().ReadGroup(relay.GroupMailbox(group), tc.excluded.Handle(), 0, 0); err != nil || len(ds) != 0 {
			t.Fatalf("case %d: the post is stored for %s (%d, %v)", i, tc.excluded.Handle(), len(ds), err)
		}
		if got := groupTexts(t, bob, group); len(got) != 1 || got[0] != alice.Handle()+": "+text {
			t.Fatalf("case %d: bob got %q", i, got)
		}
		noGroupMessages(tc.excluded, group)
	}
}
