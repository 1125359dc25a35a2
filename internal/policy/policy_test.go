package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func vars(action, role string) Vars {
	return Vars{Action: action, Sender: "alice", SenderRole: role, Target: "bob", TargetRole: "member",
		Members: []string{"alice", "bob", "carol"}, Admins: []string{"alice"}, Size: 1000, Now: now}
}

func mustTemplate(t *testing.T, name string) *Policy {
	t.Helper()
	src, ok := TemplateSource(name)
	if !ok {
		t.Fatalf("no template %s", name)
	}
	p, err := Compile(src)
	if err != nil {
		t.Fatalf("template %s: %v", name, err)
	}
	return p
}

func TestTemplatesAndRules(t *testing.T) {
	if len(Templates()) != 5 {
		t.Fatalf("templates: %v", Templates())
	}
	def, err := Compile("")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		policy  *Policy
		name    string
		v       Vars
		allowed bool
		rule    string
	}{
		{def, "member posts", vars("post", "member"), true, "can_post"},
		{def, "reader cannot post", vars("post", "reader"), false, "can_post"},
		{def, "outsider cannot post", vars("post", ""), false, "can_post"},
		{def, "admin invites", vars("invite", "admin"), true, "can_invite"},
		{def, "member cannot invite", vars("invite", "member"), false, "can_invite"},
		{def, "member cannot remove another", vars("remove", "member"), false, "can_remove"},
		{def, "member removes itself", func() Vars { v := vars("remove", "member"); v.Target = "alice"; return v }(), true, "can_remove"},
		{def, "admin cannot remove the owner", func() Vars { v := vars("remove", "admin"); v.TargetRole = "owner"; return v }(), false, "can_remove"},
		{def, "oversize post", func() Vars { v := vars("post", "member"); v.Size = 70000; return v }(), false, "max_size"},
		{def, "rate reached", func() Vars { v := vars("post", "member"); v.SentInWindow = 60; return v }(), false, "rate"},
		{def, "non-member does not read", func() Vars { v := vars("read", "member"); v.TargetRole = ""; return v }(), false, "can_read"},
		{mustTemplate(t, "announcement"), "member cannot announce", vars("post", "member"), false, "can_post"},
		{mustTemplate(t, "announcement"), "admin announces", vars("post", "admin"), true, "can_post"},
		{mustTemplate(t, "read-only-after"), "post before the date", vars("post", "member"), true, "can_post"},
		{mustTemplate(t, "read-only-after"), "post after the date", func() Vars {
			v := vars("post", "member")
			v.Now = time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
			return v
		}(), false, "read_only_after"},
		{mustTemplate(t, "company-record"), "reader cannot post", vars("post", "reader"), false, "can_post"},
		{def, "nobody joins by themselves", vars("join", ""), false, "can_join"},
		{mustTemplate(t, "open"), "anyone joins an open group", vars("join", ""), true, "can_join"},
		{mustTemplate(t, "open"), "a member of an open group cannot invite", vars("invite", "member"), false, "can_invite"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := c.policy.Decide(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != c.allowed || (d.Rule != c.rule && !(c.allowed && d.Rule == c.rule)) {
				t.Fatalf("got %+v, want allowed=%v by %s", d, c.allowed, c.rule)
			}
			if !d.Allowed && d.Reason == "" {
				t.Fatal("a denial without a reason")
			}
		})
	}
}

func TestLimits(t *testing.T) {
	cases := []struct {
		name      string
		retention time.Duration
		hold      bool
	}{
		{"ephemeral", 24 * time.Hour, false},
		{"company-record", 7 * 8760 * time.Hour, true},
		{"announcement", 8760 * time.Hour, false},
	}
	for _, c := range cases {
		l, err := mustTemplate(t, c.name).Limits(vars("post", "member"))
		if err != nil {
			t.Fatal(err)
		}
		if l.Retention != c.retention || l.LegalHold != c.hold || l.RateWindow != time.Minute {
			t.Fatalf("%s: %+v", c.name, l)
		}
	}
	l, _ := mustTemplate(t, "read-only-after").Limits(vars("post", "member"))
	if !l.ReadOnlyAfter.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || l.Retention != 720*time.Hour {
		t.Fatalf("read-only-after: %+v", l)
	}
}

func TestBadPolicies(t *testing.T) {
	cases := []struct {
		name, src string
		want      error
		mention   string
	}{
		{"syntax", "can_post = sender_role ==", ErrCompile, "can_post"},
		{"unknown input", "can_post = wallet > 3", ErrCompile, "wallet"},
		{"wrong type", "retention = 24", ErrCompile, "retention"},
		{"unknown rule", "can_dance = true", ErrCompile, "can_dance"},
		{"twice", "rate = 1\nrate = 2", ErrCompile, "twice"},
		{"no expression", "rate =", ErrCompile, "line 1"},
		{"too costly", `can_post = members.all(a, members.all(b, admins.exists(c, a + b == c)))`, ErrCost, "can_post"},
		{"too costly to count", `can_post = members.all(m, members.all(n, members.all(o, m != n || n != o)))`, ErrCost, "more than can be counted"},
		{"too long", "# " + strings.Repeat("x", MaxSourceBytes), ErrCompile, "bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.src)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.want, c.mention)
			}
		})
	}
}

// The same policy and inputs give the same decision and cost every time.
func TestDeterministic(t *testing.T) {
	p := mustTemplate(t, "announcement")
	members := make([]string, 1000)
	for i := range members {
		members[i] = "user" + strings.Repeat("x", i%7)
	}
	v := vars("post", "admin")
	v.Members = members
	first, err := p.Decide(v)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		d, err := p.Decide(v)
		if err != nil || d != first {
			t.Fatalf("run %d: %+v (first %+v) %v", i, d, first, err)
		}
	}
	if first.Cost == 0 {
		t.Fatal("cost not tracked")
	}
	if p.ID() != ID(p.Source()) || len(p.ID()) != 64 {
		t.Fatal("policy id is not the source hash")
	}
}

// BenchmarkDecidePost: one post decision (read-only check, size, rate,
// can_post) with the default policy and a 1,000-member group.
func BenchmarkDecidePost(b *testing.B) {
	p, _ := Compile(Defaults)
	v := vars("post", "member")
	v.Members = make([]string, 1000)
	for b.Loop() {
		if d, err := p.Decide(v); err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

// Uses lists the inputs a rule refers to, inside macros too; admission
// reuses a can_read decision across recipients only when can_read does not
// refer to target.
func TestUses(t *testing.T) {
	def, err := Compile("")
	if err != nil {
		t.Fatal(err)
	}
	if !def.Uses("can_read", "target_role") || def.Uses("can_read", "target") || def.Uses("can_read", "members") {
		t.Fatalf("default can_read uses: %v", def.uses["can_read"])
	}
	if !def.Uses("can_remove", "target") || !def.Uses("can_remove", "sender") {
		t.Fatalf("default can_remove uses: %v", def.uses["can_remove"])
	}
	p, err := Compile(`can_read = [target].exists(a, a in admins) || sender_role == "owner"`)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"admins", "target", "sender_role"} {
		if !p.Uses("can_read", in) {
			t.Errorf("can_read should use %s: %v", in, p.uses["can_read"])
		}
	}
	if p.Uses("can_read", "a") || p.Uses("can_read", "members") {
		t.Errorf("can_read uses: %v", p.uses["can_read"])
	}
	if !p.Uses("no_such_rule", "target") {
		t.Error("an unknown rule must be assumed to use every input")
	}
	// A rule that does not use target decides alike for every target of a role.
	v := vars("read", "member")
	d1, _ := def.Decide(v)
	v.Target = "carol"
	d2, _ := def.Decide(v)
	if d1 != d2 {
		t.Fatalf("%+v != %+v", d1, d2)
	}
}
