package node

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/policy"
)

// A group message is one ciphertext sent as a copy per member, possibly over
// several Send calls: the rate rule counts it once; a new message counts.
func TestRateCountsMessagesNotCopies(t *testing.T) {
	p, err := policy.Compile("rate = 2\nrate_window = duration(\"1h\")")
	if err != nil {
		t.Fatal(err)
	}
	var gg groupGate
	v := policy.Vars{Sender: "ann", SenderRole: "member", Members: []string{"ann", "bob"}}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	post := func(ct string) error {
		return gg.checkPost(p, v, &tokenimv1.Envelope{Ciphertext: []byte(ct)}, "g/ann", now)
	}
	for _, ct := range []string{"one", "one", "one", "two", "two"} {
		if err := post(ct); err != nil {
			t.Fatalf("copy of %q: %v", ct, err)
		}
	}
	err = post("three")
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "rule rate") {
		t.Fatalf("third message in the window: %v", err)
	}
	if err := post("two"); err != nil {
		t.Fatalf("another copy of a counted message: %v", err)
	}
	now = now.Add(time.Hour)
	if err := post("three"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if len(gg.recent["g/ann"]) != 1 {
		t.Fatalf("window kept %d posts, want 1", len(gg.recent["g/ann"]))
	}
}
