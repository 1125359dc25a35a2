package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/signalstore"
	"google.golang.org/protobuf/proto"
)

// The outbox keeps an outgoing message the network could not take yet (its
// node unreachable, or too few of the recipient's storage nodes up): its
// sealed envelopes wait here and go out with the next send to the same
// conversation, the next Sync, or while Listen runs. A message is sealed
// once (one Double Ratchet step, or one sender-key step); a retry sends the
// same envelopes, which a node that stored them already answers as
// duplicates. A message whose sealing needs the network (a first message:
// the recipient's prekey bundle; a group post: the proven member list) is
// kept unsealed, as its Content, and sealed when its turn comes. Within a
// conversation, messages go out in the order they were written: a new one
// waits behind those queued before it, unsealed, so that they are sealed
// in that order too.
//
//	outbox/<conversation>/<history seq, hex>   outboxEntry JSON (encrypted by signalstore)
const bucketOutbox = "outbox"

// StateQueued: outgoing, kept in the outbox until the network takes it.
const StateQueued = "queued"

var (
	// ErrQueued: the message is not on the network yet; it is kept in the
	// outbox and sent later (the error also says why).
	ErrQueued = errors.New("queued: not on the network yet")
	// ErrNotStored: the node is up but fewer than a majority of the
	// recipient's storage nodes could store the message.
	ErrNotStored = errors.New("too few of the recipient's storage nodes are up")
)

// outboxFlushEvery is how often Listen retries a non-empty outbox.
const outboxFlushEvery = 5 * time.Second

// outboxEntry is one queued message: the Send requests still to make or,
// for a message not sealed yet, its content and recipient.
type outboxEntry struct {
	ID       string   `json:"id"`
	Group    string   `json:"group,omitempty"`
	To       string   `json:"to,omitempty"`       // an unsealed 1:1 message's recipient
	Draft    []byte   `json:"draft,omitempty"`    // Content, marshaled: sealed when its turn comes
	Requests [][]byte `json:"requests,omitempty"` // SendRequest, marshaled
}

// retryable reports whether a send failed only for now: the node or the
// mailbox's replicas unreachable, or the call cut short (it may or may not
// have been stored: a retry with the same envelopes is a duplicate then).
func retryable(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeCanceled:
		return true
	}
	return errors.Is(err, ErrNodeUnreachable) || errors.Is(err, ErrNotStored) || errors.Is(err, ErrNotCommitted) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func outboxKey(conv string, seq uint64) string { return conv + "/" + seqKey(seq) }

// queue marks msg queued and keeps reqs in the outbox; it returns the error
// the caller gets (ErrQueued, with why).
func (c *Client) queue(msg *Message, conv string, reqs []*tokenimv1.SendRequest, cause error) error {
	e := outboxEntry{ID: msg.ID, Group: msg.Group}
	for _, r := range reqs {
		b, err := codec.Marshal(r)
		if err != nil {
			return err
		}
		e.Requests = append(e.Requests, b)
	}
	return c.keep(msg, conv, e, cause)
}

// queueDraft keeps content unsealed in the outbox, for to (1:1) or group:
// the network could not be asked for what sealing needs (a first
// message's prekey bundle, a group's proven member list and the members'
// keys), or messages queued before it wait. It gets its id and time now
// and is sealed when its turn comes (sendQueued). Like the history, the
// outbox is encrypted at rest.
func (c *Client) queueDraft(to, group string, content *tokenimv1.Content, text string, cause error) (*Message, error) {
	id, sent, err := messageIdentity(content)
	if err != nil {
		return nil, err
	}
	msg := &Message{ID: hex.EncodeToString(id), From: c.Handle(), To: to, Group: group, Text: text, SentAt: sent.UTC(), Outgoing: true,
		Notice: content.GetPolicyNotice() != nil}
	conv := "@" + to
	if group != "" {
		msg.To, conv = group, group
	}
	if f := content.GetFile(); f != nil {
		if msg.File, err = c.rememberFile(msg.ID, f); err != nil {
			return nil, err
		}
	}
	draft, err := codec.Marshal(content)
	if err != nil {
		return nil, err
	}
	e := outboxEntry{ID: msg.ID, Group: group, Draft: draft}
	if group == "" {
		e.To = to
	}
	return msg, c.keep(msg, conv, e, cause)
}

// keep stores e in the outbox and msg, queued, in the history.
func (c *Client) keep(msg *Message, conv string, e outboxEntry, cause error) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	msg.State = StateQueued
	if err := c.putMessage(msg, "", 0); err != nil { // assigns msg.seq if new
		return err
	}
	if err := c.store.Put(bucketOutbox, outboxKey(conv, msg.seq), v); err != nil {
		return err
	}
	if cause == nil {
		return ErrQueued
	}
	return fmt.Errorf("%w: %w", ErrQueued, cause)
}

// queuedFor reports whether conversation conv has messages in the outbox.
func (c *Client) queuedFor(conv string) (bool, error) {
	found := false
	err := c.store.ForEach(bucketOutbox, func(k string, _ []byte) error {
		if strings.HasPrefix(k, conv+"/") {
			found = true
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return found, err
}

var errStop = errors.New("stop")

// flushConversation sends what conv has in the outbox; it reports whether
// messages still wait there (a new message then queues behind them), and
// why.
func (c *Client) flushConversation(ctx context.Context, conv string) (waiting bool, why, err error) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if waiting, err = c.queuedFor(conv); err != nil || !waiting {
		return false, nil, err
	}
	_, why = c.flushLocked(ctx, conv) // a refused message is marked failed; one that cannot go yet stays
	waiting, err = c.queuedFor(conv)
	return waiting, why, err
}

// Queued returns the number of messages waiting in the outbox.
func (c *Client) Queued() (int, error) {
	n := 0
	err := c.store.ForEach(bucketOutbox, func(string, []byte) error { n++; return nil })
	return n, err
}

// FlushOutbox sends what waits in the outbox, each conversation in order.
// It returns how many messages went out; a conversation whose next message
// still cannot go out waits (its error is returned, the others proceed).
// A message the network refuses for good (a policy, an unknown recipient)
// is marked failed and dropped from the outbox.
func (c *Client) FlushOutbox(ctx context.Context) (int, error) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.flushLocked(ctx, "")
}

// flushLocked flushes the outbox (only conversation only, if set); the
// caller holds outMu.
func (c *Client) flushLocked(ctx context.Context, only string) (int, error) {
	type item struct {
		key, conv string
		e         outboxEntry
	}
	var items []item
	err := c.store.ForEach(bucketOutbox, func(k string, v []byte) error {
		conv, _, _ := strings.Cut(k, "/")
		if only != "" && conv != only {
			return nil
		}
		var e outboxEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("outbox entry %s: %w", k, err)
		}
		items = append(items, item{k, conv, e})
		return nil
	})
	if err != nil {
		return 0, err
	}
	sent, blocked := 0, map[string]bool{}
	var errs []error
	for _, it := range items {
		if blocked[it.conv] {
			continue
		}
		err := c.sendQueued(ctx, it.key, &it.e)
		switch {
		case err == nil:
			sent++
			if fn := c.outboxHook.Load(); fn != nil {
				if m, err := c.message(it.e.ID); err == nil {
					(*fn)(*m)
				}
			}
		case retryable(err) || ctx.Err() != nil:
			blocked[it.conv] = true
			errs = append(errs, err)
		default:
			errs = append(errs, err)
		}
	}
	return sent, errors.Join(errs...)
}

// sendQueued makes e's remaining requests, saving progress after each; when
// all are made the message is stored.
func (c *Client) sendQueued(ctx context.Context, key string, e *outboxEntry) error {
	msg, err := c.message(e.ID)
	if errors.Is(err, ErrUnknownMessage) {
		return c.store.Delete(bucketOutbox, key) // gone from the history: nothing to send for
	}
	if err != nil {
		return err
	}
	if e.Draft != nil {
		if err := c.sealDraft(ctx, key, e, msg); err != nil {
			if retryable(err) {
				return err
			}
			msg.State = StateFailed
			return errors.Join(c.store.Delete(bucketOutbox, key), c.putMessage(msg, "", 0), fmt.Errorf("queued message %s: %w", e.ID, deniedErr(err)))
		}
	}
	for len(e.Requests) > 0 {
		var req tokenimv1.SendRequest
		if err := proto.Unmarshal(e.Requests[0], &req); err != nil {
			return fmt.Errorf("outbox entry %s: %w", key, err)
		}
		_, err := call(ctx, c, "send", &req, c.relay.Send)
		if err != nil && !retryable(err) {
			msg.State = StateFailed
			return errors.Join(c.store.Update(func(tx *signalstore.Tx) error { return tx.Delete(bucketOutbox, key) }),
				c.putMessage(msg, "", 0), fmt.Errorf("queued message %s refused: %w", e.ID, deniedErr(err)))
		}
		if err != nil {
			return err
		}
		e.Requests = e.Requests[1:]
		if len(e.Requests) > 0 {
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := c.store.Put(bucketOutbox, key, v); err != nil {
				return err
			}
		}
	}
	msg.State = c.storedState(msg.ID)
	now := time.Now() // the nodes count retention from admission: now
	if msg.Group != "" {
		if g, err := c.Group(ctx, msg.Group); err == nil {
			if exp, err := c.groupExpiry(ctx, g, now); err == nil {
				msg.ExpiresAt = exp
			}
		}
	} else if exp, err := c.directExpiry(ctx, msg.To, now); err == nil {
		msg.ExpiresAt = exp
	}
	return errors.Join(c.store.Delete(bucketOutbox, key), c.putMessage(msg, "", 0))
}

// sealDraft seals a message queued unsealed and records, in the outbox
// entry, the requests to make; the message in the history gets what the
// sealing gave it (its evidence, its place in the conversation).
func (c *Client) sealDraft(ctx context.Context, key string, e *outboxEntry, msg *Message) error {
	content := new(tokenimv1.Content)
	if err := proto.Unmarshal(e.Draft, content); err != nil {
		return fmt.Errorf("outbox entry %s: %w", key, err)
	}
	var sealed *Message
	var reqs []*tokenimv1.SendRequest
	if e.Group != "" {
		m, rs, _, err := c.sealGroup(ctx, e.Group, content, msg.Text)
		if err != nil {
			return err
		}
		sealed, reqs = m, rs
	} else {
		env, m, err := c.seal(ctx, e.To, content, msg.Text, nil)
		if err != nil {
			return err
		}
		sealed, reqs = m, []*tokenimv1.SendRequest{{Envelopes: []*tokenimv1.Envelope{env}}}
	}
	e.Draft, e.Requests = nil, nil
	for _, r := range reqs {
		b, err := codec.Marshal(r)
		if err != nil {
			return err
		}
		e.Requests = append(e.Requests, b)
	}
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	msg.Evidence, msg.Counter = sealed.Evidence, sealed.Counter
	return errors.Join(c.store.Put(bucketOutbox, key, v), c.putMessage(msg, "", 0))
}

// deniedErr names a policy refusal ErrDenied, with the node's reason.
func deniedErr(err error) error {
	var ce *connect.Error
	if connect.CodeOf(err) == connect.CodePermissionDenied && errors.As(err, &ce) {
		return fmt.Errorf("%w: %s", ErrDenied, ce.Message())
	}
	return err
}

// OnOutboxSent sets fn to be called with each queued message once the
// network has taken it (a user interface updates its state).
func (c *Client) OnOutboxSent(fn func(Message)) { c.outboxHook.Store(&fn) }

// flushLoop retries a non-empty outbox every outboxFlushEvery until ctx
// ends.
func (c *Client) flushLoop(ctx context.Context) {
	every(ctx, outboxFlushEvery, func() {
		if n, err := c.Queued(); err == nil && n > 0 {
			c.FlushOutbox(ctx)
		}
	})
}

// every runs fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
