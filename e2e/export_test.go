package e2e

import (
	"errors"
	"testing"

	"github.com/tokenim/tokenim/client"
)

// An audit export of a conversation verifies offline: contents, proofs,
// numbering; leaving a message out shows as a gap; any changed byte of the
// file makes it fail. Group messages export from both ends.
func TestExportVerifies(t *testing.T) {
	ctx := ctxT(t)
	alice, _ := newUser(t, "exa")
	bob, _ := newUser(t, "exb")
	var ids []string
	for _, text := range []string{"one", "two", "three", "four"} {
		m, err := alice.Send(ctx, bob.Handle(), text)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	group := uniqueHandle("audit")
	if err := alice.CreateGroup(ctx, group, []string{bob.Handle()}, ""); err != nil {
		t.Fatal(err)
	}
	gm, err := alice.SendGroup(ctx, group, "to the group")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		waitAnchored(t, bob, id)
	}
	got, _ := bob.History(func(m *client.Message) bool { return m.Group == group })
	if len(got) != 1 {
		t.Fatalf("bob's group history: %+v", got)
	}
	waitAnchored(t, bob, got[0].ID)
	waitAnchored(t, alice, gm.ID)
	// Who was in the group just before the anchor block, proven.
	vm, a, err := bob.Verify(ctx, got[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := bob.MembershipAt(ctx, vm, a)
	if err != nil || mem.SenderRole != "owner" || mem.Reader != bob.Handle() || mem.ReaderRole != "member" || mem.Height != a.Height-1 || mem.Proven.Height != a.Height {
		t.Fatalf("membership: %+v %v", mem, err)
	}
	if vm, a, err := bob.Verify(ctx, ids[0]); err != nil {
		t.Fatal(err)
	} else if _, err := bob.MembershipAt(ctx, vm, a); err == nil {
		t.Fatal("a 1:1 message has a group membership")
	}

	ex, skipped, err := bob.ExportConversation(ctx, alice.Handle(), nil)
	if err != nil || len(ex.Messages) != 4 || len(skipped) != 0 {
		t.Fatalf("export: %d messages, skipped %v, %v", len(ex.Messages), skipped, err)
	}
	data, _ := ex.Encode()
	rep, err := client.VerifyExport(data)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 4 || rep.Anchored != 4 || rep.Gaps != 0 || rep.Broken != 0 || rep.Transcript[2].Text != "three" ||
		rep.Transcript[0].From != alice.Handle() || rep.Transcript[0].To != bob.Handle() {
		t.Fatalf("report: %+v", rep)
	}
	one, _, err := bob.ExportConversation(ctx, alice.Handle(), func(m *client.Message) bool { return m.ID == ids[0] })
	if err != nil {
		t.Fatal(err)
	}
	data, _ = one.Encode()
	for i := range data {
		mut := append([]byte(nil), data...)
		mut[i] ^= 0x01
		if _, err := client.VerifyExport(mut); err == nil {
			t.Fatalf("an export with byte %d (%q) flipped verifies", i, data[i])
		}
	}
	part, _, err := bob.ExportConversation(ctx, alice.Handle(), func(m *client.Message) bool { return m.ID != ids[2] })
	if err != nil {
		t.Fatal(err)
	}
	data, _ = part.Encode()
	if rep, err := client.VerifyExport(data); err != nil || rep.Messages != 3 || rep.Gaps != 1 {
		t.Fatalf("partial export: %+v %v", rep, err)
	}
	for _, who := range []*client.Client{bob, alice} {
		gex, _, err := who.ExportConversation(ctx, group, nil)
		if err != nil || len(gex.Messages) != 1 {
			t.Fatalf("%s's group export: %+v %v", who.Handle(), gex, err)
		}
		data, _ = gex.Encode()
		rep, err := client.VerifyExport(data)
		if err != nil || rep.Transcript[0].Text != "to the group" || rep.Transcript[0].To != group {
			t.Fatalf("%s's group export: %+v %v", who.Handle(), rep, err)
		}
		// Who was in the group just before the anchor block, as the chain
		// proves it.
		// The post is stored once for every reader: no member's copy.
		if l := rep.Transcript[0]; len(gex.Groups) != 1 || l.SenderRole != "owner" || l.Member != "" || l.MemberRole != "" || rep.NotMembers != 0 {
			t.Fatalf("%s's group export: roles %+v, %d group records", who.Handle(), l, len(gex.Groups))
		}
	}
	gex, _, err := bob.ExportConversation(ctx, group, nil)
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(what string, f func(ex *client.Export)) {
		t.Helper()
		cp := *gex
		cp.Groups = append([]client.ExportGroup(nil), gex.Groups...)
		cp.Groups[0].Record = append([]byte(nil), gex.Groups[0].Record...)
		f(&cp)
		data, _ := cp.Encode()
		if _, err := client.VerifyExport(data); !errors.Is(err, client.ErrExport) {
			t.Fatalf("%s: %v", what, err)
		}
	}
	tamper("no group record", func(ex *client.Export) { ex.Groups = nil })
	tamper("a record of another height", func(ex *client.Export) { ex.Groups[0].Height-- })
	tamper("a changed record", func(ex *client.Export) { ex.Groups[0].Record[len(ex.Groups[0].Record)-1] ^= 1 })
	tamper("a record twice", func(ex *client.Export) { ex.Groups = append(ex.Groups, ex.Groups[0]) })
	tamper("a record no message needs", func(ex *client.Export) {
		extra := ex.Groups[0]
		extra.Height--
		ex.Groups = append(ex.Groups, extra)
	})
	tamper("a v1 file with group records", func(ex *client.Export) { ex.Format = "tokenim-audit/v1" })
	v1 := *gex
	v1.Format, v1.Groups = "tokenim-audit/v1", nil
	data, _ = v1.Encode()
	if rep, err := client.VerifyExport(data); err != nil || rep.Transcript[0].SenderRole != "" {
		t.Fatalf("a v1 file (no group records): %+v %v", rep, err)
	}
	if _, err := client.VerifyExport([]byte("{\"format\":\"tokenim-audit/v1\",\"chain_id\":\"x\",\"messages\":[]} junk")); !errors.Is(err, client.ErrExport) {
		t.Fatalf("trailing junk: %v", err)
	}
}
