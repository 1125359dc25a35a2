package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/signalstore"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
)

// ackEvery bounds how many processed envelopes wait for one Ack; ackDelay
// how long a processed envelope waits while the stream is live. One Ack
// covers what arrived meanwhile: a member of a busy 1,000-member group
// would otherwise send its node an Ack per message, and so would every
// other member. An envelope not yet acknowledged when the client stops is
// delivered again and recognised as a duplicate.
//
// While the stream is live, Acks go on one AckStream request kept open
// beside it (a message each, not a request each); the last Ack, when the
// stream ends, is a request of its own, so the client knows the node has
// it. If the AckStream fails, that Ack is a request and the next opens a
// new stream (none, if the node has no AckStream).
//
// In a group's mailbox an Ack only moves this member's read position (the
// node deletes a post once every reader has passed it): while the stream
// is live it goes every groupAckDelay, not every ackDelay — a busy
// 1,000-member group's members would otherwise send their node 3,300
// Acks a second that delete nothing.
const (
	ackEvery      = 128
	ackDelay      = 300 * time.Millisecond
	groupAckDelay = 2 * time.Second
	ackCloseWait  = 2 * time.Second
)

// Sync sends what waits in the outbox, then fetches every envelope waiting
// on the node, decrypts and stores them, acknowledges them, and returns the
// new messages (not protocol messages: sender keys, receipts).
func (c *Client) Sync(ctx context.Context) ([]Message, error) {
	if err := c.purgeExpired(); err != nil {
		return nil, err
	}
	c.FlushOutbox(ctx) // what cannot go yet stays queued (Queued, and the history, tell)
	var got []Message
	keep := func(m Message) {
		if m.State != StateControl {
			got = append(got, m)
		}
	}
	err := c.receive(ctx, true, keep)
	for i := 0; errors.Is(err, errGroupsLearned) && i < maxRestarts; i++ {
		err = c.receive(ctx, true, keep)
	}
	if errors.Is(err, errGroupsLearned) {
		err = nil // the next Sync reads them
	}
	return got, err
}

// errGroupsLearned ends a stream that brought the sender key of a group
// it did not read: a member removed while offline still gets the posts
// it was a reader of, from a stream that reads that group's mailbox too
// (the node reads the groups a member is in now, and those it names).
var errGroupsLearned = errors.New("new groups to read")

// maxRestarts bounds the streams one Sync opens for groups it learned.
const maxRestarts = 3

// Listen delivers messages to fn as they arrive, until ctx ends; it
// reconnects (with backoff) when the node goes away. Protocol messages
// (StateControl: a sender key, a receipt, which changed the state of
// messages sent) reach fn too, for a user interface to refresh.
func (c *Client) Listen(ctx context.Context, fn func(Message)) error {
	go c.flushLoop(ctx)
	backoff := 250 * time.Millisecond
	for {
		err := c.receive(ctx, false, fn)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errGroupsLearned) {
			continue // at once, with those groups
		}
		if err != nil && !errors.Is(err, ErrNodeUnreachable) && connect.CodeOf(err) != connect.CodeUnavailable {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// receive runs one Receive stream. With untilCaughtUp it returns at the
// end of the stored backlog.
func (c *Client) receive(ctx context.Context, untilCaughtUp bool, fn func(Message)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nodeID, err := c.connectedNode(ctx)
	if err != nil {
		return err
	}
	if err := c.ensureHome(ctx, nodeID); err != nil {
		return err
	}
	after, err := c.cursor(nodeID)
	if err != nil {
		return err
	}
	groups, err := c.groupPositions(nodeID)
	if err != nil {
		return err
	}
	var stream *connect.ServerStreamForClient[tokenimv1.ReceiveResponse]
	for attempt := 0; ; attempt++ {
		req := connect.NewRequest(&tokenimv1.ReceiveRequest{After: after, Groups: groups})
		if err := c.authed(ctx, req.Header()); err != nil {
			return err
		}
		stream, err = c.relay.Receive(ctx, req)
		if err == nil && !stream.Receive() {
			err = stream.Err()
		}
		if connect.CodeOf(err) == connect.CodeUnauthenticated && attempt == 0 {
			c.dropToken()
			continue
		}
		if err != nil {
			return c.netErr("receive", err)
		}
		break
	}
	defer stream.Close()
	r := &receiver{c: c, fn: fn, nodeID: nodeID, last: map[string]uint64{"": after}, acked: map[string]uint64{"": after}, applied: map[string]uint64{"": after}}
	for _, g := range groups {
		r.last[g.Group], r.acked[g.Group], r.applied[g.Group] = g.After, g.After, g.After
	}
	// The AckStream outlives ctx by its last Ack: it is closed, not cut.
	r.ackCtx, r.abortAcks = context.WithCancel(context.WithoutCancel(ctx))
	defer r.abortAcks()
	ackCtx, stopAcks := context.WithCancel(ctx)
	acksDone := make(chan struct{})
	go func() { defer close(acksDone); r.ackLoop(ackCtx) }()
	defer func() { stopAcks(); <-acksDone }()
	for {
		if err := r.handle(ctx, stream.Msg()); err != nil {
			return err
		}
		if stream.Msg().GetCaughtUp() {
			if err := r.ack(ctx, !untilCaughtUp); err != nil { // Sync's Ack is its last
				return err
			}
			if r.learnedGroups() {
				if !untilCaughtUp {
					r.ack(context.WithoutCancel(ctx), false)
				}
				return errGroupsLearned
			}
			// Others may have fetched bundles without writing: check the stock.
			if err := c.TopUpPrekeys(ctx); err != nil || untilCaughtUp {
				return err
			}
		}
		if !stream.Receive() {
			break
		}
	}
	if err := r.ack(context.WithoutCancel(ctx), false); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	return c.netErr("receive", stream.Err())
}

// receiver processes one stream's deliveries and acknowledges them.
type receiver struct {
	c        *Client
	fn       func(Message)
	nodeID   string
	caughtUp bool

	// Cursors are per mailbox: "" is the account's own, a group name
	// that group's (Delivery.group).
	mu       sync.Mutex           // guards last, acked, prekeys and receipts (the stream's loop and ackLoop)
	last     map[string]uint64    // last processed cursor
	acked    map[string]uint64    // last acknowledged cursor (sent; written under ackMu too)
	ackedAt  map[string]time.Time // when it was sent
	prekeys  int                  // one-time prekeys consumed
	receipts map[string][][]byte  // 1:1 senders → ids of their messages now stored here, to confirm
	learned  map[string]bool      // groups a sender key named that had no delivery on this stream yet

	ackMu     sync.Mutex                                                                  // serializes ack: the local cursor never moves back
	ackStream *connect.ClientStreamForClient[tokenimv1.AckRequest, tokenimv1.AckResponse] // open AckStream (ackMu)
	applied   map[string]uint64                                                           // the node applied every Ack up to it (ackMu)
	noStream  bool                                                                        // the node has no AckStream (ackMu)
	ackCtx    context.Context                                                             // of the AckStreams
	abortAcks context.CancelFunc                                                          // ends them (unblocks a Send)
}

// learnedGroups reports whether the stream brought, in its backlog, sender
// keys of groups it delivered nothing of: it may not read their mailboxes
// (a member removed since reads a group only if it names it).
func (r *receiver) learnedGroups() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for g := range r.learned {
		if _, ok := r.last[g]; !ok {
			return true
		}
	}
	return false
}

// ackLoop acknowledges, every ackDelay, what the live stream processed.
func (r *receiver) ackLoop(ctx context.Context) {
	every(ctx, ackDelay, func() {
		r.ack(ctx, true) // a failure is retried on the next tick and when the stream ends
	})
}

func (r *receiver) handle(ctx context.Context, res *tokenimv1.ReceiveResponse) error {
	if res.GetCaughtUp() {
		r.caughtUp = true
		return nil
	}
	d := res.GetDelivery()
	if d == nil || d.Envelope == nil {
		return nil
	}
	m, isNew, err := r.c.open(ctx, r.nodeID, d)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.last[d.Group] = d.Cursor
	if d.Envelope.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_PREKEY && isNew {
		r.prekeys++
	}
	if isNew && wantsReceipt(m) {
		if r.receipts == nil {
			r.receipts = map[string][][]byte{}
		}
		r.receipts[m.From] = append(r.receipts[m.From], d.Envelope.Id)
	}
	behind := r.last[d.Group] - r.acked[d.Group]
	learned := ""
	if isNew && m.keyFor != "" {
		if _, ok := r.last[m.keyFor]; !ok {
			learned = m.keyFor
		}
	}
	if learned != "" {
		if r.learned == nil {
			r.learned = map[string]bool{}
		}
		r.learned[learned] = true
	}
	r.mu.Unlock()
	if learned != "" {
		if err := r.c.learnGroup(r.nodeID, learned); err != nil {
			return err
		}
	}
	if isNew {
		r.fn(*m)
	}
	for _, later := range r.c.takeRetried() {
		r.fn(later)
	}
	if behind >= ackEvery {
		return r.ack(ctx, true)
	}
	return nil
}

// ack tells the node everything up to r.last is stored locally, and
// replaces consumed one-time prekeys. A live Ack goes on the AckStream. The
// last one (live false) closes the stream, waiting at most ackCloseWait for
// the node's answer (then the stream is abandoned, which also frees a Send
// blocked on it: a node gone silent cannot hold the client), and is a
// request if anything is left to acknowledge.
func (r *receiver) ack(ctx context.Context, live bool) error {
	if !live {
		t := time.AfterFunc(ackCloseWait, r.abortAcks)
		defer t.Stop()
	}
	r.ackMu.Lock()
	defer r.ackMu.Unlock()
	if !live && r.ackStream != nil {
		r.closeAckStream()
	}
	r.mu.Lock()
	var todo []*tokenimv1.AckRequest
	now := time.Now()
	for mb, last := range r.last {
		if last <= r.acked[mb] {
			continue
		}
		if live && mb != "" && now.Sub(r.ackedAt[mb]) < groupAckDelay && last-r.acked[mb] < ackEvery {
			continue // a group's read position: not yet
		}
		todo = append(todo, &tokenimv1.AckRequest{Cursor: last, Group: mb})
	}
	prekeys := r.prekeys
	r.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	slices.SortFunc(todo, func(a, b *tokenimv1.AckRequest) int { return strings.Compare(a.Group, b.Group) })
	for _, req := range todo {
		if err := r.c.setCursor(mailboxScope(r.nodeID, req.Group), req.Cursor); err != nil {
			return err
		}
		if !live || !r.streamAck(ctx, req) {
			if _, err := call(ctx, r.c, "ack", req, r.c.relay.Ack); err != nil {
				return err
			}
			r.applied[req.Group] = req.Cursor
		}
		r.mu.Lock()
		r.acked[req.Group] = req.Cursor
		if r.ackedAt == nil {
			r.ackedAt = map[string]time.Time{}
		}
		r.ackedAt[req.Group] = now
		r.mu.Unlock()
	}
	r.sendReceipts(ctx)
	if prekeys > 0 {
		r.mu.Lock()
		r.prekeys -= prekeys
		r.mu.Unlock()
		return r.c.TopUpPrekeys(ctx)
	}
	return nil
}

// Receipts: a client confirms to the sender each 1:1 message it has
// stored (text, file), with one Receipt per sender for what one Ack
// covers; the sender marks those messages delivered. Group messages get
// none: a post to 1,000 members would bring 999 back. Receipts are
// best-effort protocol messages: one the network cannot take now is
// dropped, not queued.
const (
	receiptMaxIDs = 256
	receiptWait   = 5 * time.Second
)

// wantsReceipt reports whether a received message is confirmed to its
// sender.
func wantsReceipt(m *Message) bool {
	return !m.Outgoing && m.Group == "" && m.State == StateReceived && !m.Notice
}

// sendReceipts sends the receipts collected since the last ones.
func (r *receiver) sendReceipts(ctx context.Context) {
	r.mu.Lock()
	pending := r.receipts
	r.receipts = nil
	r.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, receiptWait)
	defer cancel()
	for from, ids := range pending {
		for len(ids) > 0 {
			n := min(len(ids), receiptMaxIDs)
			content := &tokenimv1.Content{Body: &tokenimv1.Content_Receipt{Receipt: &tokenimv1.Receipt{MessageIds: ids[:n]}}}
			if _, err := r.c.sendContent(ctx, from, content, ""); err != nil {
				break // best-effort: the messages stay "stored" at the sender
			}
			ids = ids[n:]
		}
	}
}

// markDelivered records a receipt from peer: its outgoing 1:1 messages to
// peer with these ids are on peer's device. One transaction for the whole
// receipt (up to receiptMaxIDs messages).
func (c *Client) markDelivered(peer string, ids [][]byte) error {
	return c.store.Update(func(tx *signalstore.Tx) error {
		for _, id := range ids {
			seq, ok, err := tx.Get(bucketMsgID, hex.EncodeToString(id))
			if err != nil {
				return err
			}
			if !ok || len(seq) != 8 {
				continue // never ours
			}
			key := seqKey(binary.BigEndian.Uint64(seq))
			b, ok, err := tx.Get(bucketHistory, key)
			if err != nil {
				return err
			}
			if !ok {
				continue // deleted here: its retention ended
			}
			var m Message
			if err := json.Unmarshal(b, &m); err != nil {
				return fmt.Errorf("history entry: %w", err)
			}
			if !m.Outgoing || m.Group != "" || m.To != peer || (m.State != StateStored && m.State != StateSending) {
				continue
			}
			m.State = StateDelivered
			if b, err = json.Marshal(&m); err != nil {
				return err
			}
			if err := tx.Put(bucketHistory, key, b); err != nil {
				return err
			}
		}
		return nil
	})
}

// streamAck sends an Ack on the AckStream, opening it first if needed
// (ackMu held). It reports false when the Ack must go as a request: the
// node has no AckStream, or the stream failed (it is closed then, and the
// next live Ack opens another).
func (r *receiver) streamAck(ctx context.Context, req *tokenimv1.AckRequest) bool {
	if r.noStream {
		return false
	}
	if r.ackStream == nil {
		s := r.c.relay.AckStream(r.ackCtx)
		if err := r.c.authed(ctx, s.RequestHeader()); err != nil {
			return false
		}
		r.ackStream = s
	}
	if err := r.ackStream.Send(req); err != nil {
		r.closeAckStream()
		return false
	}
	return true
}

// closeAckStream ends the AckStream and reads the node's answer (ackMu
// held). If the node did not answer that it applied every Ack on it, acked
// goes back to what it did apply, so the next Ack covers the rest.
func (r *receiver) closeAckStream() {
	s := r.ackStream
	r.ackStream = nil
	_, err := s.CloseAndReceive()
	switch connect.CodeOf(err) {
	case connect.CodeUnimplemented:
		r.noStream = true // an older node: Acks are requests
	case connect.CodeUnauthenticated:
		r.c.dropToken() // the next request or stream authenticates again
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for mb, a := range r.acked {
		if err == nil {
			r.applied[mb] = max(r.applied[mb], a)
		} else {
			r.acked[mb] = r.applied[mb]
		}
	}
}

// open decrypts a delivery and stores it; isNew is false for an envelope
// already in the history (a redelivery).
func (c *Client) open(ctx context.Context, nodeID string, d *tokenimv1.Delivery) (*Message, bool, error) {
	env := d.Envelope
	if seen, err := c.hasMessage(env.Id); err != nil || seen {
		return nil, false, err
	}
	m := &Message{ID: hex.EncodeToString(env.Id), From: env.From, To: c.Handle(), ReceivedAt: time.UnixMilli(env.ReceivedAtMs).UTC(), State: StateReceived}
	var content *tokenimv1.Content
	var err error
	if env.ExpiresAtMs > 0 {
		m.ExpiresAt = time.UnixMilli(env.ExpiresAtMs).UTC()
	}
	scope := mailboxScope(nodeID, d.Group)
	if env.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP {
		m.Group, m.To = env.Group, env.Group
	}
	if done, err := c.openOnce(ctx, m, env, scope, d.Cursor); errors.Is(err, errSeen) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	} else if done {
		return m, true, nil
	}
	if env.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP {
		content, err = c.groupDecrypt(ctx, env)
	} else {
		content, err = c.decrypt(ctx, env)
	}
	if errors.Is(err, ErrNodeUnreachable) || errors.Is(err, context.Canceled) {
		return nil, false, err // not processed: it stays on the node
	}
	if errors.Is(err, errNoSenderKey) {
		m.State = StateWaiting
		if err := c.keepPending(env); err != nil {
			return nil, false, err
		}
		if err := c.requestSenderKey(ctx, env); err != nil {
			return nil, false, err
		}
	} else if err := c.fill(ctx, nil, m, env, content, err); err != nil {
		return nil, false, err
	}
	// Another stream of this client may have opened it meanwhile (then
	// this decryption failed as a repeat): what that one stored stays.
	err = c.store.Update(func(tx *signalstore.Tx) error { return putNewMessageTx(tx, m, scope, d.Cursor) })
	if errors.Is(err, errSeen) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	m.meta = nil
	return m, true, nil
}

// fill completes m from a decrypted envelope (or the decryption error):
// state, text, numbering and evidence; a sender key it carries is
// accepted, and group messages that waited for it are decrypted.
//
// Within a transaction (tx set: the one that took the decryption's ratchet
// step) only contents that need nothing from the network are filled
// (local), and its writes go through tx.
func (c *Client) fill(ctx context.Context, tx *signalstore.Tx, m *Message, env *tokenimv1.Envelope, content *tokenimv1.Content, err error) error {
	switch {
	case errors.Is(err, ErrIdentityMismatch), errors.Is(err, ErrCommitment):
		m.State = StateRejected
		return nil
	case err != nil:
		m.State = StateUndecryptable
		return nil
	}
	m.Text = content.GetText().GetBody()
	m.SentAt = time.UnixMilli(content.SentAtMs).UTC()
	m.Counter = content.Counter
	m.PrevID = hex.EncodeToString(content.PrevId)
	raw, err := codec.Marshal(content) // strict decoding: the bytes the commitment hashed
	if err != nil {
		return err
	}
	m.Evidence = evidenceOf(env, raw)
	if env.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP && env.To != "" {
		m.Evidence.Member = c.Handle() // a member's copy (before group mailboxes)
	}
	if m.Replayed, err = c.track(tx, m, env.From, dirKey(env, c.Handle()), content.Counter); err != nil {
		return err
	}
	if skd := content.GetSenderKey(); skd != nil {
		m.State = StateControl
		if err := c.acceptSenderKey(ctx, env.From, skd); errors.Is(err, ErrNodeUnreachable) || errors.Is(err, context.Canceled) {
			return err // not processed: it stays on the node
		} else if err != nil {
			m.State = StateRejected
		} else if err := c.startsAt(env.From, "group/"+skd.Group, skd.Since); err != nil {
			return err
		} else if err := c.retryPending(ctx, skd.Group, skd.Epoch, env.From); err != nil {
			return err
		} else {
			m.keyFor = skd.Group
		}
	}
	if req := content.GetSenderKeyRequest(); req != nil {
		m.State = StateControl
		if err := c.answerSenderKeyRequest(ctx, env.From, req); err != nil {
			return err
		}
	}
	if rc := content.GetReceipt(); rc != nil {
		m.State = StateControl
		if env.Type != tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP {
			if err := c.markDelivered(env.From, rc.MessageIds); err != nil {
				return err
			}
		}
	}
	if n := content.GetPolicyNotice(); n != nil {
		m.Notice = true
		var g *tokenimv1.GroupRecord
		if env.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP {
			g, err = c.Group(ctx, env.Group) // its policy now, proven
			if err == nil && ledger.Role(g, env.From) != ledger.RoleOwner {
				err = fmt.Errorf("%w: a group policy notice from @%s, not an owner", ErrDenied, env.From)
			}
		}
		text := ""
		if err == nil {
			text, err = c.policyNoticeText(ctx, env.From, g, n.PolicyId, true)
		}
		switch {
		case errors.Is(err, ErrNodeUnreachable) || errors.Is(err, context.Canceled):
			return err // not processed: it stays on the node
		case err != nil:
			m.State, m.Text = StateRejected, "" // a policy the chain does not have
		default:
			m.Text = text
		}
	}
	if f := content.GetFile(); f != nil {
		m.Text = fileText(f)
		if tx != nil {
			m.File, err = rememberFileTx(tx, m.ID, f)
		} else {
			m.File, err = c.rememberFile(m.ID, f)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// local reports whether fill needs nothing from the network for content:
// a text or a file (not a sender key, a request for one, a receipt or a
// policy notice).
func local(content *tokenimv1.Content) bool {
	return content.GetText() != nil || content.GetFile() != nil
}

// errNotLocal rolls back a one-commit open whose content needs the network.
var errNotLocal = errors.New("the content needs the network")

// openOnce opens an envelope in one commit: the ratchet (or sender-key)
// step of its decryption and the message with its cursor (a crash cannot
// leave a step taken and the message lost, and the path of every message
// has one commit fewer). It reports false, having changed nothing, for a
// content that needs the network, or a group post whose sender key has
// not arrived (open then takes the usual path).
func (c *Client) openOnce(ctx context.Context, m *Message, env *tokenimv1.Envelope, scope string, cursor uint64) (bool, error) {
	group := env.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP
	var acct *tokenimv1.Account
	if env.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_PREKEY {
		var err error // the sender's proven identity, fetched before the transaction
		if acct, err = c.chainIdentity(ctx, env.From); err != nil {
			if errors.Is(err, ErrNodeUnreachable) || errors.Is(err, context.Canceled) {
				return false, err
			}
			return false, nil // decrypt reports it as before
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.store.Update(func(tx *signalstore.Tx) error {
		if err := notSeenTx(tx, m.ID); err != nil {
			return err
		}
		var content *tokenimv1.Content
		var err error
		if group {
			content, err = c.groupDecryptWith(ctx, tx.Signal(), env)
		} else {
			content, err = c.decryptWith(ctx, tx.Signal(), env, acct)
		}
		if errors.Is(err, errNoSenderKey) || err == nil && !local(content) {
			return errNotLocal
		}
		if err := c.fill(ctx, tx, m, env, content, err); err != nil {
			return err
		}
		return putMessageTx(tx, m, scope, cursor) // notSeenTx checked it above, in this transaction
	})
	if errors.Is(err, errNotLocal) {
		return false, nil
	}
	if err == nil {
		m.meta = nil
	}
	return err == nil, err
}

// errSeen: the envelope was opened meanwhile; nothing is changed.
var errSeen = errors.New("already opened")

// notSeenTx returns errSeen if the history has message id already
// (opened meanwhile by another stream of this client).
func notSeenTx(tx *signalstore.Tx, id string) error {
	if _, seen, err := tx.Get(bucketMsgID, id); err != nil || seen {
		if err == nil {
			err = errSeen
		}
		return err
	}
	return nil
}

// putNewMessageTx stores m unless it was opened meanwhile (errSeen): what
// that stored stays.
func putNewMessageTx(tx *signalstore.Tx, m *Message, scope string, cursor uint64) error {
	if err := notSeenTx(tx, m.ID); err != nil {
		return err
	}
	return putMessageTx(tx, m, scope, cursor)
}

// decrypt returns the Content of an envelope, or ErrDecrypt.
func (c *Client) decrypt(ctx context.Context, env *tokenimv1.Envelope) (*tokenimv1.Content, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.decryptWith(ctx, c.store, env, nil)
}

// decryptWith decrypts through st (the store, or one bound to a
// transaction), with c.mu held. acct is the sender's proven account for a
// PREKEY envelope, or nil to fetch it.
func (c *Client) decryptWith(ctx context.Context, st *signalstore.Store, env *tokenimv1.Envelope, acct *tokenimv1.Account) (*tokenimv1.Content, error) {
	addr := protocol.NewSignalAddress(env.From, DeviceID)
	ser := st.Serializer()
	cipher := session.NewCipher(session.NewBuilderFromSignal(st, addr, ser), addr)
	if len(env.Ciphertext) == 0 {
		return nil, ErrDecrypt // libsignal's parsers panic on empty input
	}
	var pt []byte
	switch env.Type {
	case tokenimv1.EnvelopeType_ENVELOPE_TYPE_PREKEY:
		msg, err := protocol.NewPreKeySignalMessageFromBytes(env.Ciphertext, ser.PreKeySignalMessage, ser.SignalMessage)
		if err != nil {
			return nil, ErrDecrypt
		}
		if acct == nil {
			if acct, err = c.chainIdentity(ctx, env.From); err != nil {
				return nil, err
			}
		}
		if !bytes.Equal(msg.IdentityKey().Serialize(), acct.IdentityKey) {
			return nil, fmt.Errorf("%w: a first message claiming to be from @%s carries another identity key", ErrIdentityMismatch, env.From)
		}
		if pt, err = cipher.DecryptMessage(ctx, msg); err != nil {
			return nil, ErrDecrypt
		}
	case tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE:
		msg, err := protocol.NewSignalMessageFromBytes(env.Ciphertext, ser.SignalMessage)
		if err != nil {
			return nil, ErrDecrypt
		}
		if pt, err = cipher.Decrypt(ctx, msg); err != nil {
			return nil, ErrDecrypt
		}
	default:
		return nil, ErrDecrypt
	}
	return decodeContent(pt, env)
}

func decodeContent(padded []byte, env *tokenimv1.Envelope) (*tokenimv1.Content, error) {
	raw, err := unpad(padded)
	if err != nil {
		return nil, ErrDecrypt
	}
	var content tokenimv1.Content
	if err := codec.Unmarshal(raw, &content, MaxTextBytes+1024); err != nil {
		return nil, ErrDecrypt
	}
	if !bytes.Equal(content.MessageId, env.Id) {
		return nil, ErrDecrypt
	}
	if err := checkCommitment(env, raw, &content); err != nil {
		return nil, err
	}
	return &content, nil
}

// learnGroup records a group whose mailbox on nodeID this client reads
// from now on (from its start, if it has no position there yet): a
// sender key named it.
func (c *Client) learnGroup(nodeID, group string) error {
	scope := mailboxScope(nodeID, group)
	if _, ok, err := c.store.Get(bucketMeta, cursorKey(scope)); err != nil || ok {
		return err
	}
	return c.setCursor(scope, 0)
}
