package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tokenim/tokenim/client"
)

// TestPrintMessage: `inbox` shows messages by state and never shows a
// protocol message (a group's sender key arrives as one when the group's
// first post is read live) as an undecryptable message.
func TestPrintMessage(t *testing.T) {
	for _, tc := range []struct {
		m      client.Message
		asJSON bool
		want   string // "" : nothing printed
	}{
		{client.Message{State: client.StateReceived, From: "alice", Text: "hi all", Group: "team"}, false, "[team] alice: hi all"},
		{client.Message{State: client.StateUndecryptable, From: "alice"}, false, "alice: [message could not be decrypted]"},
		{client.Message{State: client.StateWaiting, From: "alice", Group: "team"}, false, "[team] alice: [waiting for the sender's key"},
		{client.Message{State: client.StateControl, From: "alice"}, false, ""},
		{client.Message{State: client.StateControl, From: "alice"}, true, ""},
		{client.Message{State: client.StateReceived, From: "alice", Text: "hello"}, true, `"text":"hello"`},
	} {
		var out bytes.Buffer
		printMessage(&out, tc.m, tc.asJSON)
		got := out.String()
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s (json %v): printed %q, want %q", tc.m.State, tc.asJSON, got, tc.want)
		}
	}
}
