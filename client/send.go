package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
	"unicode/utf8"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/signalstore"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
)

// Send encrypts text for a handle ("@bob" or "bob") and stores it on the
// node. It returns once the node has the envelope on disk.
func (c *Client) Send(ctx context.Context, to, text string) (*Message, error) {
	h, err := ledger.NormalizeHandle(to)
	if err != nil {
		return nil, err
	}
	switch {
	case len(text) == 0:
		return nil, ErrEmpty
	case len(text) > MaxTextBytes:
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrTooLarge, len(text), MaxTextBytes)
	case !utf8.ValidString(text):
		return nil, fmt.Errorf("message is not valid UTF-8")
	}
	return c.sendContent(ctx, h, &tokenimv1.Content{Body: &tokenimv1.Content_Text{Text: &tokenimv1.Text{Body: text}}}, text)
}

// sendContent seals content for to, records it in the history (text is
// what the history shows) and stores it on the network.
//
// A message the network cannot take yet (the node unreachable, too few of
// the recipient's storage nodes up) is kept in the outbox and sent later;
// the caller then gets the message, queued, with an error wrapping
// ErrQueued. Messages queued earlier in the conversation go first. A
// message that cannot even be sealed yet (a first message needs the
// recipient's keys from the network) is queued unsealed, as is one behind
// queued messages: it is sealed when its turn comes.
func (c *Client) sendContent(ctx context.Context, to string, content *tokenimv1.Content, text string) (*Message, error) {
	control := content.GetSenderKey() != nil || content.GetSenderKeyRequest() != nil || content.GetReceipt() != nil
	conv := "@" + to
	if !control { // protocol messages are retried by their own flow
		waiting, why, err := c.flushConversation(ctx, conv)
		if err != nil {
			return nil, err
		}
		if waiting {
			return c.queueDraft(to, "", content, text, why)
		}
	}
	receipt := content.GetReceipt() != nil // not kept in the history: it only changes the state of others
	// The message is kept (as sending) in the commit that seals it.
	env, msg, err := c.seal(ctx, to, content, text, func(tx *signalstore.Tx, msg *Message) error {
		if receipt {
			return nil
		}
		if f := content.GetFile(); f != nil {
			var err error
			if msg.File, err = rememberFileTx(tx, msg.ID, f); err != nil {
				return err
			}
		}
		if control {
			msg.State = StateControl
		}
		return putMessageTx(tx, msg, "", 0)
	})
	if err != nil {
		if retryable(err) && !control {
			return c.queueDraft(to, "", content, text, err)
		}
		return nil, err
	}
	req := &tokenimv1.SendRequest{Envelopes: []*tokenimv1.Envelope{env}}
	if receipt {
		_, err := call(ctx, c, "send", req, c.relay.Send)
		return nil, err
	}
	if _, err := call(ctx, c, "send", req, c.relay.Send); err != nil {
		if retryable(err) && !control {
			return msg, c.queue(msg, conv, []*tokenimv1.SendRequest{req}, err)
		}
		msg.State = StateFailed
		c.putMessage(msg, "", 0)
		return nil, deniedErr(err)
	}
	if control {
		// Kept as it was sealed: it is never shown, and a sender key handed
		// to 999 members would cost as many more commits and policy lookups.
		return msg, nil
	}
	msg.State = c.storedState(msg.ID)
	if exp, err := c.directExpiry(ctx, to, msg.SentAt); err == nil {
		msg.ExpiresAt = exp
	}
	return msg, c.putMessage(msg, "", 0)
}

// seal builds the envelope: a session (X3DH on first use), then one
// Double Ratchet step over the padded Content. A content that has its id
// already (a message queued unsealed) keeps it and its time.
func (c *Client) seal(ctx context.Context, to string, content *tokenimv1.Content, text string, keep func(*signalstore.Tx, *Message) error) (*tokenimv1.Envelope, *Message, error) {
	id, now, err := messageIdentity(content)
	if err != nil {
		return nil, nil, err
	}
	content.From, content.To = c.Handle(), to
	// The session first, and a message is numbered only once it can be
	// sealed (a failed try leaves no gap the recipient would report as a
	// missing message). Building one asks the network: that part runs
	// outside c.mu, so a sender key handed to 999 new members fetches
	// their proven keys and bundles several at a time.
	// The lock is held from the check that finds a session (or after
	// the bundle for one is fetched) to the ratchet step: a session
	// deleted in between (a key change accepted) would leave nothing to
	// encrypt with.
	addr := protocol.NewSignalAddress(to, DeviceID)
	var bundle *prekey.Bundle
	for {
		c.mu.Lock()
		has, err := c.store.ContainsSession(ctx, addr)
		if err != nil {
			c.mu.Unlock()
			return nil, nil, err
		}
		if has || bundle != nil {
			break // processBundle builds the session unless one exists by now
		}
		c.mu.Unlock()
		if bundle, err = c.fetchBundle(ctx, to); err != nil {
			return nil, nil, err
		}
	}
	defer c.mu.Unlock()
	// The session (X3DH), the number, the ratchet step and what keep
	// writes (the message itself) commit together: one commit on the path
	// of every message, and a try that fails takes neither a number nor a
	// message key.
	var env *tokenimv1.Envelope
	var msg *Message
	err = c.store.Update(func(tx *signalstore.Tx) error {
		st := tx.Signal()
		if bundle != nil {
			if err := c.processBundle(ctx, st, to, addr, bundle); err != nil {
				return err
			}
		}
		if err := stampTx(tx, to, content); err != nil {
			return err
		}
		pt, err := codec.Marshal(content)
		if err != nil {
			return err
		}
		cipher := session.NewCipher(session.NewBuilderFromSignal(st, addr, st.Serializer()), addr)
		ct, err := cipher.Encrypt(ctx, pad(pt))
		if err != nil {
			return fmt.Errorf("encrypt for @%s: %w", to, err)
		}
		typ := tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE
		if ct.Type() == protocol.PREKEY_TYPE {
			typ = tokenimv1.EnvelopeType_ENVELOPE_TYPE_PREKEY
		}
		env = &tokenimv1.Envelope{Id: id, To: to, Type: typ, Ciphertext: ct.Serialize(), Commitment: Commitment(pt)}
		msg = &Message{ID: hex.EncodeToString(id), From: c.Handle(), To: to, Text: text, SentAt: now.UTC(), Outgoing: true, State: StateSending, Counter: content.Counter,
			Evidence: evidenceOf(env, pt), Notice: content.GetPolicyNotice() != nil}
		if keep != nil {
			return keep(tx, msg)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return env, msg, nil
}

// messageIdentity gives content its message id and time, unless it has
// them (a message queued unsealed keeps what it got when it was written).
func messageIdentity(content *tokenimv1.Content) ([]byte, time.Time, error) {
	if len(content.MessageId) == 16 && content.SentAtMs != 0 {
		return content.MessageId, time.UnixMilli(content.SentAtMs), nil
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, time.Time{}, err
	}
	now := time.Now()
	content.MessageId, content.SentAtMs = id, now.UnixMilli()
	return id, now, nil
}

// storedState is the state of an outgoing message the node just took:
// stored, unless the recipient's receipt came back first (delivered).
func (c *Client) storedState(id string) string {
	if cur, err := c.message(id); err == nil && cur.State == StateDelivered {
		return StateDelivered
	}
	return StateStored
}
