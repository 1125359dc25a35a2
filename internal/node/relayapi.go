package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/nodeauth"
	"github.com/tokenim/tokenim/internal/relay"
)

type relayService struct{ n *Node }

func (s *relayService) Challenge(_ context.Context, req *connect.Request[tokenimv1.ChallengeRequest]) (*connect.Response[tokenimv1.ChallengeResponse], error) {
	if _, _, err := s.n.account(req.Msg.Handle); err != nil {
		return nil, err
	}
	h, _ := ledger.NormalizeHandle(req.Msg.Handle)
	nonce, err := s.n.auth.Challenge(h)
	if err != nil {
		return nil, connect.NewError(connect.CodeResourceExhausted, err)
	}
	return connect.NewResponse(&tokenimv1.ChallengeResponse{Nonce: nonce, NodeId: s.n.nodeID}), nil
}

func (s *relayService) Authenticate(_ context.Context, req *connect.Request[tokenimv1.AuthenticateRequest]) (*connect.Response[tokenimv1.AuthenticateResponse], error) {
	acct, _, err := s.n.account(req.Msg.Handle)
	if err != nil {
		return nil, err
	}
	tok, exp, err := s.n.auth.Authenticate(acct.Handle, req.Msg.Nonce, req.Msg.Signature, acct.AccountKey)
	switch {
	case errors.Is(err, nodeauth.ErrBusy):
		return nil, connect.NewError(connect.CodeResourceExhausted, err)
	case err != nil:
		return nil, connect.NewError(connect.CodeUnauthenticated, err)
	}
	return connect.NewResponse(&tokenimv1.AuthenticateResponse{Token: tok, ExpiresAtMs: exp.UnixMilli()}), nil
}

func (s *relayService) UploadPrekeys(_ context.Context, req *connect.Request[tokenimv1.UploadPrekeysRequest]) (*connect.Response[tokenimv1.UploadPrekeysResponse], error) {
	me, err := s.n.caller(req.Header())
	if err != nil {
		return nil, err
	}
	keys := req.Msg.Prekeys
	if len(keys) > MaxPrekeysPerUpload {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%d prekeys in one upload (cap %d)", len(keys), MaxPrekeysPerUpload))
	}
	for _, k := range keys {
		if len(k.PublicKey) != 33 || k.PublicKey[0] != 0x05 {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("prekey %d: want a 33-byte Signal public key", k.Id))
		}
	}
	if err := s.n.relay.PutPrekeys(me, keys); err != nil {
		return nil, relayError(err)
	}
	return connect.NewResponse(&tokenimv1.UploadPrekeysResponse{Stored: uint32(len(keys))}), nil
}

func (s *relayService) PrekeyCount(_ context.Context, req *connect.Request[tokenimv1.PrekeyCountRequest]) (*connect.Response[tokenimv1.PrekeyCountResponse], error) {
	me, err := s.n.caller(req.Header())
	if err != nil {
		return nil, err
	}
	n, err := s.n.relay.PrekeyCount(me)
	if err != nil {
		return nil, relayError(err)
	}
	return connect.NewResponse(&tokenimv1.PrekeyCountResponse{Count: uint32(n)}), nil
}

func (s *relayService) GetPrekeyBundle(_ context.Context, req *connect.Request[tokenimv1.GetPrekeyBundleRequest]) (*connect.Response[tokenimv1.GetPrekeyBundleResponse], error) {
	if _, err := s.n.caller(req.Header()); err != nil {
		return nil, err
	}
	acct, _, err := s.n.account(req.Msg.Handle)
	if err != nil {
		return nil, err
	}
	otk, err := s.n.relay.TakePrekey(acct.Handle)
	if err != nil {
		return nil, relayError(err)
	}
	return connect.NewResponse(&tokenimv1.GetPrekeyBundleResponse{Account: acct, OneTimePrekey: otk}), nil
}

func (s *relayService) Send(ctx context.Context, req *connect.Request[tokenimv1.SendRequest]) (*connect.Response[tokenimv1.SendResponse], error) {
	me, err := s.n.caller(req.Header())
	if err != nil {
		return nil, err
	}
	envs, err := expandShared(req.Msg.Envelopes, req.Msg.Shared)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, e := range envs {
		if err := s.admit(e, me, now.UnixMilli()); err != nil {
			return nil, err
		}
	}
	if err := s.n.admitGroup(envs, me, now); err != nil {
		return nil, err
	}
	if err := s.n.admitDirect(envs, me, now); err != nil {
		return nil, err
	}
	start := time.Now()
	dup, err := s.n.store(ctx, envs)
	if errors.Is(err, ErrNoQuorum) {
		ce := connect.NewError(connect.CodeUnavailable, err)
		ce.Meta().Set(relay.ReasonHeader, relay.ReasonReplicas)
		return nil, ce
	}
	if err != nil {
		return nil, relayError(err)
	}
	s.n.metrics.admitted(envs, dup, time.Since(start))
	resp := &tokenimv1.SendResponse{}
	for i, d := range dup {
		if d {
			resp.Duplicates = append(resp.Duplicates, envs[i].Id)
		}
	}
	return connect.NewResponse(resp), nil
}

// admit checks one envelope and stamps the sender and admission time.
func (s *relayService) admit(e *tokenimv1.Envelope, me string, nowMs int64) error {
	e.Readers = nil // the node decides them
	if relay.IsGroupPost(e) {
		if err := ledger.CheckGroupName(e.Group); err != nil {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("group: %w", err))
		}
		e.From, e.ReceivedAtMs, e.ExpiresAtMs = me, nowMs, 0
		return nil
	}
	to, err := ledger.NormalizeHandle(e.To)
	if err != nil {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("recipient: %w", err))
	}
	if !s.n.knownAccount(to) {
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("%w: @%s", ledger.ErrUnknownAccount, to))
	}
	switch e.Type {
	case tokenimv1.EnvelopeType_ENVELOPE_TYPE_PREKEY, tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE:
		if e.Group != "" || e.Epoch != 0 {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("a 1:1 envelope names a group"))
		}
	case tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP:
		if e.Group == "" {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("a group envelope without a group"))
		}
	default:
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("envelope type %v", e.Type))
	}
	e.To, e.From, e.ReceivedAtMs, e.ExpiresAtMs = to, me, nowMs, 0
	return nil
}

// Receive streams the caller's own mailbox and the mailboxes of its
// groups (the posts it is a reader of), each from the position the
// request gives (a group it does not give: from the position its last
// Ack there left on this node). Groups joined or left while the stream
// is open are picked up within groupsRecheck.
func (s *relayService) Receive(ctx context.Context, req *connect.Request[tokenimv1.ReceiveRequest], stream *connect.ServerStream[tokenimv1.ReceiveResponse]) error {
	me, err := s.n.caller(req.Header())
	if err != nil {
		return err
	}
	if len(req.Msg.Groups) > MaxReceiveGroups {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%d groups named (cap %d)", len(req.Msg.Groups), MaxReceiveGroups))
	}
	pos := map[string]uint64{} // group → last cursor read
	var named []string         // read too: a member removed since reads the posts it was a reader of
	for _, g := range req.Msg.Groups {
		if err := ledger.CheckGroupName(g.Group); err != nil {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("group %q: %w", g.Group, err))
		}
		pos[g.Group] = g.After
		named = append(named, g.Group)
	}
	mine := s.n.groupsOf(me, named)
	subscribe := func() (<-chan struct{}, func()) {
		return s.n.relay.SubscribeMany(append([]string{me}, mine.mailboxes...))
	}
	notify, cancel := subscribe()
	defer func() { cancel() }()
	s.n.pullMailbox(ctx, me)
	start := func() error { // positions of groups new to this stream
		for i, g := range mine.groups {
			if _, ok := pos[g]; ok {
				continue
			}
			p, err := s.n.relay.Position(mine.mailboxes[i], me)
			if err != nil {
				return relayError(err)
			}
			pos[g] = p
			s.n.pullGroupMailbox(mine.mailboxes[i])
		}
		return nil
	}
	if err := start(); err != nil {
		return err
	}
	recheck := time.NewTicker(groupsRecheck)
	defer recheck.Stop()
	after, caughtUp := req.Msg.After, false
	send := func(batch []*tokenimv1.Delivery) error {
		for _, d := range batch {
			if err := stream.Send(&tokenimv1.ReceiveResponse{Item: &tokenimv1.ReceiveResponse_Delivery{Delivery: d}}); err != nil {
				return err
			}
		}
		s.n.metrics.delivered(batch)
		return nil
	}
	for {
		batch, err := s.n.relay.Read(me, after, readBatch)
		if err != nil {
			return relayError(err)
		}
		if err := send(batch); err != nil {
			return err
		}
		if len(batch) > 0 {
			after = batch[len(batch)-1].Cursor
		}
		more := len(batch) == readBatch
		for i, g := range mine.groups {
			ds, last, err := s.n.relay.ReadGroup(mine.mailboxes[i], me, pos[g], readBatch)
			if err != nil {
				return relayError(err)
			}
			if err := send(ds); err != nil {
				return err
			}
			// A full page, or a scan that stopped at its cap: look again.
			more = more || len(ds) == readBatch || last-pos[g] >= relay.MaxGroupScan
			pos[g] = last
		}
		if more {
			continue
		}
		if !caughtUp {
			caughtUp = true
			if err := stream.Send(&tokenimv1.ReceiveResponse{Item: &tokenimv1.ReceiveResponse_CaughtUp{CaughtUp: true}}); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.n.draining:
			return nil // the node is stopping: a clean end, the client reconnects
		case <-notify:
		case <-recheck.C:
			if _, h := s.n.app.Committed(); h == mine.height {
				continue
			}
			now := s.n.groupsOf(me, named)
			if slices.Equal(now.groups, mine.groups) {
				mine.height = now.height
				continue
			}
			cancel()
			mine = now
			notify, cancel = subscribe()
			if err := start(); err != nil {
				return err
			}
		}
	}
}

func (s *relayService) Ack(_ context.Context, req *connect.Request[tokenimv1.AckRequest]) (*connect.Response[tokenimv1.AckResponse], error) {
	me, err := s.n.caller(req.Header())
	if err != nil {
		return nil, err
	}
	if err := s.ack(me, req.Msg.Cursor, req.Msg.Group); err != nil {
		return nil, err
	}
	return connect.NewResponse(&tokenimv1.AckResponse{}), nil
}

// AckStream applies each Ack on the stream in order, as Ack does; the
// caller is authenticated once, when the stream opens (as Receive is).
func (s *relayService) AckStream(ctx context.Context, stream *connect.ClientStream[tokenimv1.AckRequest]) (*connect.Response[tokenimv1.AckResponse], error) {
	me, err := s.n.caller(stream.RequestHeader())
	if err != nil {
		return nil, err
	}
	for stream.Receive() {
		if err := s.ack(me, stream.Msg().Cursor, stream.Msg().Group); err != nil {
			return nil, err
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return connect.NewResponse(&tokenimv1.AckResponse{}), nil
}

// ack deletes me's envelopes up to cursor, here and on the mailbox's other
// replicas; in a group's mailbox it moves me's read position there (the
// posts go once every reader has passed them).
func (s *relayService) ack(me string, cursor uint64, group string) error {
	if group != "" {
		if err := ledger.CheckGroupName(group); err != nil {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("group: %w", err))
		}
		if !s.n.knownGroup(group) { // no read position for a group that does not exist
			return connect.NewError(connect.CodeNotFound, fmt.Errorf("%w: %s", ledger.ErrUnknownGroup, group))
		}
		if err := s.n.relay.AckGroup(relay.GroupMailbox(group), me, cursor); err != nil {
			return relayError(err)
		}
		s.n.prune.mark(group)
		return nil
	}
	var ids [][]byte
	if len(s.n.otherReplicas(me)) > 0 { // they are told which ids were acknowledged
		var err error
		if ids, err = s.n.relay.IDs(me, cursor); err != nil {
			return relayError(err)
		}
	}
	if err := s.n.relay.Ack(me, cursor); err != nil {
		return relayError(err)
	}
	s.n.forgetElsewhere(me, ids)
	return nil
}

// knownAccount reports whether handle is registered (committed).
func (n *Node) knownAccount(handle string) bool {
	if _, ok := n.known.Load(handle); ok {
		return true
	}
	r, _ := n.app.Committed()
	if _, err := ledger.GetAccount(r, handle); err != nil {
		return false
	}
	n.known.Store(handle, struct{}{}) // accounts are never deleted
	return true
}

func relayError(err error) error {
	switch {
	case errors.Is(err, relay.ErrInvalidEnvelope):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, relay.ErrTooManyPrekeys):
		return connect.NewError(connect.CodeResourceExhausted, err)
	case errors.Is(err, relay.ErrClosed):
		return connect.NewError(connect.CodeUnavailable, err)
	}
	return connect.NewError(connect.CodeInternal, err)
}
