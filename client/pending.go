package client

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/relay"
)

// StateWaiting: a group message that arrived before its sender's key (the
// key travels in a separate 1:1 message, possibly from another replica);
// it is decrypted when the key arrives.
const StateWaiting = "waiting"

// errNoSenderKey: no sender key yet for the envelope's (group, epoch,
// sender).
var errNoSenderKey = errors.New("no sender key yet")

// bucketPending holds group envelopes waiting for their sender key, by
// envelope id; the node has been told they are stored (acknowledged).
const bucketPending = "pending_group"

func (c *Client) keepPending(env *tokenimv1.Envelope) error {
	b, err := codec.Marshal(env)
	if err != nil {
		return err
	}
	return c.store.Put(bucketPending, hex.EncodeToString(env.Id), b)
}

// retryPending decrypts the waiting envelopes of (group, epoch, from) now
// that the key arrived, updates their history entries and queues them for
// the receive callback.
func (c *Client) retryPending(ctx context.Context, group string, epoch uint64, from string) error {
	var due []*tokenimv1.Envelope
	err := c.store.ForEach(bucketPending, func(_ string, v []byte) error {
		var env tokenimv1.Envelope
		if err := codec.Unmarshal(v, &env, relay.MaxCiphertext+4096); err != nil {
			return nil // unreadable: dropped below with the others it cannot match
		}
		if env.Group == group && env.Epoch == epoch && env.From == from {
			due = append(due, &env)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, env := range due {
		m := &Message{ID: hex.EncodeToString(env.Id), From: env.From, To: env.Group, Group: env.Group,
			ReceivedAt: time.UnixMilli(env.ReceivedAtMs).UTC(), State: StateReceived}
		if env.ExpiresAtMs > 0 {
			m.ExpiresAt = time.UnixMilli(env.ExpiresAtMs).UTC()
		}
		content, err := c.groupDecrypt(ctx, env)
		if err := c.fill(ctx, nil, m, env, content, err); err != nil {
			return err
		}
		if err := c.putMessage(m, "", 0); err != nil {
			return err
		}
		if err := c.store.Delete(bucketPending, hex.EncodeToString(env.Id)); err != nil {
			return err
		}
		c.retriedMu.Lock()
		c.retried = append(c.retried, *m)
		c.retriedMu.Unlock()
	}
	return nil
}

// takeRetried returns the messages retryPending decrypted since the last
// call.
func (c *Client) takeRetried() []Message {
	c.retriedMu.Lock()
	defer c.retriedMu.Unlock()
	out := c.retried
	c.retried = nil
	return out
}
