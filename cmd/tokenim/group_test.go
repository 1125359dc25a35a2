package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// TestPrintGroup: `group show` says which block proves the list and, with
// --at, which block's state it is.
func TestPrintGroup(t *testing.T) {
	g := &tokenimv1.GroupRecord{Name: "team", PolicyId: strings.Repeat("ab", 32), Epoch: 1, CreatedHeight: 3,
		Members: []*tokenimv1.GroupMember{{Handle: "alice", Role: "owner"}, {Handle: "carol", Role: "member"}}}
	pr := &client.Proven{Height: 42, SignedPower: 10, TotalPower: 10}
	for _, tc := range []struct {
		at         int64
		want, none string
	}{
		{0, "  ✓ proven against block 42's app hash, signed by 10/10 validator power", "as block"},
		{41, "  as block 41 left it: ✓ proven against block 42's app hash", ""},
	} {
		var out bytes.Buffer
		printGroup(&out, g, pr, tc.at)
		got := out.String()
		if !strings.Contains(got, tc.want) || tc.none != "" && strings.Contains(got, tc.none) || !strings.Contains(got, "@carol") || !strings.Contains(got, "epoch 1") {
			t.Errorf("at %d: printed %q, want %q", tc.at, got, tc.want)
		}
	}
}

// TestPrintHistory: yours show their state, every message its id, and a
// message under a retention when it goes; one conversation is chosen by
// @handle or by a group's bare name.
func TestPrintHistory(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		m    client.Message
		want string
	}{
		{client.Message{ID: "aa11", From: "alice", To: "bob", Outgoing: true, State: client.StateStored, Text: "hi", SentAt: now}, "alice → bob: hi  (stored, id aa11)"},
		{client.Message{ID: "bb22", From: "bob", To: "alice", State: client.StateReceived, Text: "yo", SentAt: now}, "bob: yo  (id bb22)"},
		{client.Message{ID: "cc33", From: "carol", To: "team", Group: "team", State: client.StateReceived, Text: "all", SentAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour)}, "[team] carol: all  (deletes in 30d, id cc33)"},
		{client.Message{ID: "ee55", From: "alice", To: "bob", Outgoing: true, State: client.StateStored, Text: "proven", SentAt: now, Anchor: &client.Anchor{}}, "alice → bob: proven  (anchored, id ee55)"},
		{client.Message{ID: "dd44", From: "dave", State: client.StateUndecryptable, ReceivedAt: now}, "dave: [message could not be decrypted]  (id dd44)"},
	} {
		var out bytes.Buffer
		printHistory(&out, tc.m, now, false)
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("printed %q, want %q", out.String(), tc.want)
		}
	}
	for d, want := range map[time.Duration]string{90 * time.Second: "1m30s", 25*time.Hour + 5*time.Minute: "25h5m", 72 * time.Hour: "3d", -time.Second: "0s"} {
		if got := roughly(d); got != want {
			t.Errorf("roughly(%v) = %q, want %q", d, got, want)
		}
	}
	withBob, err := conversation("@bob")
	if err != nil {
		t.Fatal(err)
	}
	team, err := conversation("team")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m           client.Message
		bob, inTeam bool
	}{
		{client.Message{From: "me", To: "bob", Outgoing: true}, true, false},
		{client.Message{From: "bob", To: "me"}, true, false},
		{client.Message{From: "bob", To: "team", Group: "team"}, false, true},
		{client.Message{From: "carol", To: "me"}, false, false},
	} {
		if withBob(&tc.m) != tc.bob || team(&tc.m) != tc.inTeam {
			t.Errorf("%+v: with bob %v, in team %v", tc.m, withBob(&tc.m), team(&tc.m))
		}
	}
	if _, err := conversation("Team!"); err == nil {
		t.Error("a bad group name is accepted")
	}
}

func TestPrintRights(t *testing.T) {
	var out bytes.Buffer
	printRights(&out, client.Rights{PolicyID: strings.Repeat("ab", 32), Post: false, PostReason: "can_post is false: sender_role in [\"owner\"]",
		Invite: true, MaxSize: 65536, Rate: 60, RateWindow: time.Minute, Disappearing: client.Disappearing{After: 24 * time.Hour}})
	want := "rules, as the nodes apply them to you now (`tokenim policy show " + strings.Repeat("ab", 32) + "` prints the policy):\n" +
		"  you may not post (can_post is false: sender_role in [\"owner\"]); you may add members; you may not remove members\n" +
		"  messages disappear after 1 day; at most 65536 bytes a message, 60 posts per 1 minute\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}
