package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"connectrpc.com/connect"
)

// A connection that breaks under a call is the node going away, even when
// the RPC layer calls it canceled; the caller's own cancellation is not.
func TestNetErrConnectionFailed(t *testing.T) {
	c := &Client{cfg: Config{NodeURL: "http://127.0.0.1:1"}}
	broken := &net.OpError{Op: "write", Net: "tcp", Err: fmt.Errorf("write: %w", syscall.EPIPE)}
	for _, tc := range []struct {
		err         error
		unreachable bool
	}{
		{connect.NewError(connect.CodeCanceled, fmt.Errorf("Post: readfrom: %w", broken)), true},
		{connect.NewError(connect.CodeUnknown, syscall.ECONNRESET), true},
		{connect.NewError(connect.CodeUnavailable, errors.New("connection refused")), true},
		{connect.NewError(connect.CodeCanceled, context.Canceled), false},
		{connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("%w (%w)", context.DeadlineExceeded, broken)), false},
		{connect.NewError(connect.CodePermissionDenied, errors.New("rule can_post")), false},
	} {
		if got := errors.Is(c.netErr("send", tc.err), ErrNodeUnreachable); got != tc.unreachable {
			t.Errorf("%v: unreachable %v, want %v", tc.err, got, tc.unreachable)
		}
	}
}
