package client

import (
	"errors"
	"testing"

	"github.com/tokenim/tokenim/internal/ledger"
)

// A refused transaction's error is its code's, with the ledger's reason
// said once (the log repeats the code's text first).
func TestTxError(t *testing.T) {
	for _, tc := range []struct {
		code uint32
		log  string
		want string
		is   error
	}{
		{ledger.CodeDenied, "denied by the group's policy: can_remove is false: x", "denied by the group's policy: can_remove is false: x", ledger.ErrDenied},
		{ledger.CodeInvalidGroup, "invalid group change: @bob is already a member", "invalid group change: @bob is already a member", ledger.ErrInvalidGroup},
		{ledger.CodeDenied, "denied by the group's policy", "denied by the group's policy", ledger.ErrDenied},
		{ledger.CodeDenied, "something else", "denied by the group's policy (something else)", ledger.ErrDenied},
	} {
		err := txError(tc.code, tc.log)
		if err.Error() != tc.want || !errors.Is(err, tc.is) {
			t.Errorf("code %d, log %q: %q (is %v), want %q", tc.code, tc.log, err, errors.Is(err, tc.is), tc.want)
		}
	}
}
