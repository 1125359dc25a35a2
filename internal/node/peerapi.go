package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/relay"
)

type peerService struct{ n *Node }

func (s *peerService) Replicate(ctx context.Context, req *connect.Request[tokenimv1.ReplicateRequest]) (*connect.Response[tokenimv1.ReplicateResponse], error) {
	if _, err := s.n.peerCaller(tokenimv1connect.PeerServiceReplicateProcedure, req.Header(), req.Msg); err != nil {
		return nil, err
	}
	envs, err := expandShared(req.Msg.Envelopes, req.Msg.Shared)
	if err != nil {
		return nil, err
	}
	// The entry node checked that recipients are registered; this node's
	// view of the chain may lag a block behind, so only the form is checked.
	for _, e := range envs {
		if relay.IsGroupPost(e) {
			if err := ledger.CheckGroupName(e.Group); err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("group post: %w", err))
			}
			for _, r := range e.Readers {
				if h, err := ledger.NormalizeHandle(r); err != nil || h != r {
					return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("reader %q is not a handle", r))
				}
			}
			continue
		}
		if h, err := ledger.NormalizeHandle(e.To); err != nil || h != e.To {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("recipient %q is not a handle", e.To))
		}
	}
	dup, err := s.n.relay.Append(ctx, envs)
	if err != nil {
		return nil, relayError(err)
	}
	s.n.observeReplicated(envs, time.Now())
	s.n.metrics.replicated(len(envs))
	resp := &tokenimv1.ReplicateResponse{}
	for i, d := range dup {
		if d {
			resp.Duplicates = append(resp.Duplicates, envs[i].Id)
		}
	}
	return connect.NewResponse(resp), nil
}

func (s *peerService) Forget(_ context.Context, req *connect.Request[tokenimv1.ForgetRequest]) (*connect.Response[tokenimv1.ForgetResponse], error) {
	if _, err := s.n.peerCaller(tokenimv1connect.PeerServiceForgetProcedure, req.Header(), req.Msg); err != nil {
		return nil, err
	}
	if err := s.n.relay.Forget(req.Msg.Recipient, req.Msg.Ids); err != nil {
		return nil, relayError(err)
	}
	return connect.NewResponse(&tokenimv1.ForgetResponse{}), nil
}

func (s *peerService) Pull(_ context.Context, req *connect.Request[tokenimv1.PullRequest]) (*connect.Response[tokenimv1.PullResponse], error) {
	caller, err := s.n.peerCaller(tokenimv1connect.PeerServicePullProcedure, req.Header(), req.Msg)
	if err != nil {
		return nil, err
	}
	if req.Msg.Recipient != "" {
		return s.pullMailbox(caller, req.Msg)
	}
	envs, more, err := s.n.relay.Since(req.Msg.SinceMs, nilIfEmpty(req.Msg.AfterId), 256)
	if err != nil {
		return nil, relayError(err)
	}
	resp := &tokenimv1.PullResponse{More: more}
	if len(envs) > 0 {
		resp.LastId = envs[len(envs)-1].Id
	}
	for _, e := range envs {
		if slices.Contains(s.n.mailboxReplicas(mailboxOf(e)), caller) {
			resp.Envelopes = append(resp.Envelopes, e)
		}
	}
	return connect.NewResponse(resp), nil
}

// pullMailbox serves one mailbox to a node that is one of its replicas.
func (s *peerService) pullMailbox(caller string, req *tokenimv1.PullRequest) (*connect.Response[tokenimv1.PullResponse], error) {
	// The caller may have just become a home node of the recipient in a
	// block this node has not applied yet: give the chain a moment.
	for i := 0; i < 40 && !slices.Contains(s.n.mailboxReplicas(req.Recipient), caller); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if !slices.Contains(s.n.mailboxReplicas(req.Recipient), caller) {
		return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("node %s is not a replica of @%s's mailbox", short(caller), req.Recipient))
	}
	const page = 256
	batch, err := s.n.relay.Read(req.Recipient, req.AfterCursor, page)
	if err != nil {
		return nil, relayError(err)
	}
	resp := &tokenimv1.PullResponse{More: len(batch) == page}
	for _, d := range batch {
		resp.Envelopes = append(resp.Envelopes, d.Envelope)
		resp.LastCursor = d.Cursor
	}
	return connect.NewResponse(resp), nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
