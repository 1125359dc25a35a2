package main

import (
	"bytes"
	"strings"
	"testing"

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
