package client

import (
	"context"
	"testing"
	"time"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/keystore"
	"github.com/tokenim/tokenim/internal/policy"
)

// A group's rules as the web client shows them: evaluated for this
// account's role under the default policy and the announcement template.
func TestGroupRights(t *testing.T) {
	src, _ := policy.TemplateSource("announcement")
	ann, err := policy.Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	policies.Store(ann.ID(), ann) // as if fetched from the chain
	g := &tokenimv1.GroupRecord{Name: "team", PolicyId: policy.ID(policy.Defaults), Members: []*tokenimv1.GroupMember{
		{Handle: "olga", Role: "owner"}, {Handle: "pete", Role: "member"}, {Handle: "rita", Role: "reader"}}}
	rights := func(me string, g *tokenimv1.GroupRecord) Rights {
		t.Helper()
		c := &Client{secrets: &keystore.Secrets{Handle: me}}
		r, err := c.GroupRights(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := rights("olga", g); !r.Post || !r.Invite || !r.Remove || r.Disappearing.After != 30*24*time.Hour || r.Source != policy.Defaults {
		t.Fatalf("the owner under the default: %+v", r)
	}
	if r := rights("pete", g); !r.Post || r.Invite || r.Remove {
		t.Fatalf("a member under the default: %+v", r)
	}
	if r := rights("rita", g); r.Post || r.PostRule != "can_post" || r.PostReason == "" {
		t.Fatalf("a reader under the default: %+v", r)
	}
	g.PolicyId = ann.ID()
	if r := rights("pete", g); r.Post || r.PostRule != "can_post" || r.PolicyID != ann.ID() {
		t.Fatalf("a member of an announcement channel: %+v", r)
	}
	if r := rights("olga", g); !r.Post {
		t.Fatalf("the owner of an announcement channel: %+v", r)
	}
}
