package client

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/internal/relay"
)

// A node's answers map to the errors a caller branches on: a node that is
// up but could not store on enough replicas is ErrNotStored, other
// unavailability ErrNodeUnreachable; both are worth a retry (the outbox
// keeps the message), a refusal is not.
func TestSendErrors(t *testing.T) {
	c := &Client{cfg: Config{NodeURL: "http://127.0.0.1:1"}}
	noQuorum := connect.NewError(connect.CodeUnavailable, errors.New("envelope not stored on a majority of its replicas: 1 of 3 stored, need 2"))
	noQuorum.Meta().Set(relay.ReasonHeader, relay.ReasonReplicas)
	for _, tc := range []struct {
		name      string
		err       error
		is        error
		retryable bool
	}{
		{"replicas down", noQuorum, ErrNotStored, true},
		{"node down", connect.NewError(connect.CodeUnavailable, errors.New("dial tcp: connection refused")), ErrNodeUnreachable, true},
		{"deadline", connect.NewError(connect.CodeDeadlineExceeded, context.DeadlineExceeded), nil, true},
		{"policy", connect.NewError(connect.CodePermissionDenied, errors.New("rule can_post: false")), nil, false},
		{"bad envelope", connect.NewError(connect.CodeInvalidArgument, errors.New("recipient")), nil, false},
	} {
		err := c.netErr("send", tc.err)
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v is not %v", tc.name, err, tc.is)
		}
		if got := retryable(err); got != tc.retryable {
			t.Errorf("%s: retryable %v, want %v", tc.name, got, tc.retryable)
		}
		if q := fmt.Errorf("%w: %w", ErrQueued, err); !errors.Is(q, ErrQueued) || (tc.is != nil && !errors.Is(q, tc.is)) {
			t.Errorf("%s: the queued error loses its cause: %v", tc.name, q)
		}
	}
	if !errors.Is(c.netErr("send", noQuorum), ErrNotStored) || errors.Is(c.netErr("send", noQuorum), ErrNodeUnreachable) {
		t.Error("a node that is up is reported unreachable")
	}
	if err := deniedErr(connect.NewError(connect.CodePermissionDenied, errors.New("rule can_post: false"))); !errors.Is(err, ErrDenied) {
		t.Errorf("a policy refusal: %v", err)
	}
}
