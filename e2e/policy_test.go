package e2e

import (
	"errors"
	"strings"
	"testing"

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
