package e2e

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/policy"
)

// A policy deployed on chain is found by name and id; a duplicate name, a
// policy that does not compile, and one over the cost bound are refused.
func TestDeployPolicy(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "nina")
	src, _ := policy.TemplateSource("ephemeral")
	id, err := alice.DeployPolicy(ctx, "ephemeral-24h", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ephemeral-24h", id} {
		rec, err := client.GetPolicy(ctx, cfg(t.TempDir()), key)
		if err != nil || rec.Id != id || rec.Source != src || rec.Deployer != alice.Handle() {
			t.Fatalf("get %s: %v %v", key, rec, err)
		}
	}
	if _, err := alice.DeployPolicy(ctx, "ephemeral-24h", src); !errors.Is(err, client.ErrPolicyExists) {
		t.Fatalf("same name again: %v", err)
	}
	if _, err := alice.DeployPolicy(ctx, "broken", "can_post = wallet > 1"); !errors.Is(err, client.ErrInvalidPolicy) || !strings.Contains(err.Error(), "wallet") {
		t.Fatalf("bad policy: %v", err)
	}
	costly := "can_post = members.all(a, members.all(b, admins.exists(c, a + b == c)))"
	if _, err := alice.DeployPolicy(ctx, "costly", costly); !errors.Is(err, client.ErrInvalidPolicy) {
		t.Fatalf("costly policy: %v", err)
	}
	if _, err := client.GetPolicy(ctx, cfg(t.TempDir()), "nope"); !errors.Is(err, client.ErrUnknownPolicy) {
		t.Fatalf("unknown policy: %v", err)
	}
}

// A group's rate holds across a node restart: the node saves its windows
// when it stops and loads them when it starts, so the sender does not get
// a fresh window; the refusal names the rule.
func TestRateSurvivesARestart(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "rsa")
	bob, _ := newUser(t, "rsb")
	group := groupUnder(t, alice, "rate = 2\nrate_window = duration(\"1h\")", bob)
	for _, text := range []string{"one", "two"} {
		if _, err := alice.SendGroup(ctx, group, text); err != nil {
			t.Fatal(err)
		}
	}
	tn.restart(t)
	if _, err := alice.SendGroup(ctx, group, "three"); !errors.Is(err, client.ErrDenied) || !strings.Contains(err.Error(), "rate") {
		t.Fatalf("a third post in the window, after a restart: %v", err)
	}
}

// groupUnder deploys a policy of src and has owner create a group under it
// with members; it returns the group's name.
func groupUnder(t *testing.T, owner *client.Client, src string, members ...*client.Client) string {
	t.Helper()
	pol := uniqueHandle("pol")
	if _, err := owner.DeployPolicy(ctxT(t), pol, src); err != nil {
		t.Fatal(err)
	}
	var hs []string
	for _, m := range members {
		hs = append(hs, m.Handle())
	}
	group := uniqueHandle("under")
	if err := owner.CreateGroup(ctxT(t), group, hs, pol); err != nil {
		t.Fatal(err)
	}
	return group
}

// An owner replaces a group's policy: the members are told with a notice,
// the epoch grows (new sender keys), and the next post carries the new
// retention; a member cannot.
func TestGroupSetPolicy(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "gspa")
	bob, _ := newUser(t, "gspb")
	group := uniqueHandle("rules")
	if err := alice.CreateGroup(ctx, group, []string{bob.Handle()}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendGroup(ctx, group, "under the default"); err != nil {
		t.Fatal(err)
	}
	before, err := alice.Group(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	hour, err := alice.EnsurePolicy(ctx, "hour", `retention = duration("3600s")`)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.SetGroupPolicy(ctx, group, hour); !errors.Is(err, client.ErrDenied) {
		t.Fatalf("a member replaces the policy: %v", err)
	}
	if err := alice.SetGroupPolicy(ctx, group, hour); err != nil {
		t.Fatal(err)
	}
	after, err := alice.Group(ctx, group)
	if err != nil || after.PolicyId != hour || after.Epoch != before.Epoch+1 {
		t.Fatalf("the group after: %v %v", after, err)
	}
	m, err := alice.SendGroup(ctx, group, "under an hour")
	if err != nil {
		t.Fatal(err)
	}
	if m.ExpiresAt.Sub(m.SentAt) != time.Hour {
		t.Fatalf("a post under the new policy expires %v after sending", m.ExpiresAt.Sub(m.SentAt))
	}
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, g := range got {
		if g.Group == group && g.State == client.StateReceived {
			if g.Notice {
				seen = append(seen, "notice: "+g.Text)
			} else {
				seen = append(seen, g.Text)
			}
		}
	}
	want := []string{"under the default", "notice: changed the group's policy to " + hour[:12] + ": messages disappear after 1 hour", "under an hour"}
	if !slices.Equal(seen, want) {
		t.Fatalf("bob got %q, want %q", seen, want)
	}
	mine, err := alice.History(func(m *client.Message) bool { return m.Group == group && m.Notice })
	if err != nil || len(mine) != 1 || mine[0].State != client.StateStored || !strings.HasPrefix(mine[0].Text, "changed the group's policy") {
		t.Fatalf("alice's notice: %+v %v", mine, err)
	}
}
