package client

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/signalstore"
)

// Message states.
const (
	StateSending       = "sending"       // outgoing, not yet confirmed by the node
	StateStored        = "stored"        // outgoing, on the node's disk
	StateDelivered     = "delivered"     // outgoing 1:1, on the recipient's device (a receipt came back)
	StateFailed        = "failed"        // outgoing, the node refused or was unreachable
	StateReceived      = "received"      // incoming, decrypted
	StateUndecryptable = "undecryptable" // incoming, failed to decrypt (ErrDecrypt)
	StateRejected      = "rejected"      // incoming, sender's identity key not the chain's
	StateControl       = "control"       // a protocol message (a sender key), not shown
)

// Message is one entry of the local history.
type Message struct {
	ID         string    `json:"id"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Text       string    `json:"text"`
	SentAt     time.Time `json:"sent_at"`
	ReceivedAt time.Time `json:"received_at,omitzero"`
	Outgoing   bool      `json:"outgoing"`
	State      string    `json:"state"`
	// Counter is the sender's number for this message in the conversation
	// (1, 2, …); 0 if unknown (undecryptable).
	Counter uint64 `json:"counter,omitempty"`
	// ExpiresAt is when the conversation's policy deletes the message
	// (zero: kept); clients delete their copy then too.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Group is set on group messages (To is then the group's name).
	Group string `json:"group,omitempty"`
	// File is set when the message shares a file (FetchFile downloads it).
	File *FileRef `json:"file,omitempty"`
	// PrevID is the sender's previous message in this conversation (hex).
	PrevID string `json:"prev_id,omitempty"`
	// Replayed: another message with this counter arrived before.
	Replayed bool `json:"replayed,omitempty"`
	// Evidence proves the message later (Verify, Export).
	Evidence *Evidence `json:"evidence,omitempty"`
	// Anchor is set once Verify proved the message in an anchored log.
	Anchor *Anchor `json:"anchor,omitempty"`
	// Notice: an event of the conversation (a policy attached or detached,
	// e.g. a disappearing-messages timer set) rather than something
	// written; Text says what, as the chain shows it.
	Notice bool `json:"notice,omitempty"`
	seq    uint64
	keyFor string      // the group of a sender key this message carried (receive.go)
	meta   []metaWrite // written with the message by the next putMessage
}

// metaWrite is a bucketMeta key and value.
type metaWrite struct {
	key   string
	value []byte
}

// Local history layout (values encrypted by signalstore):
//
//	history/<seq: 8 bytes BE, hex>   Message JSON, in local order
//	msgid/<message id hex>           seq of that message
const (
	bucketHistory = "history"
	bucketMsgID   = "msgid"
	metaHistSeq   = "history_seq"
	metaCursor    = "receive_cursor"
)

func seqKey(seq uint64) string { return hex.EncodeToString(binary.BigEndian.AppendUint64(nil, seq)) }

// hasMessage reports whether a message id is in the history.
func (c *Client) hasMessage(id []byte) (bool, error) {
	_, ok, err := c.store.Get(bucketMsgID, hex.EncodeToString(id))
	return ok, err
}

// putMessage adds or updates m in the history, and (if cursor > 0) records
// the receive cursor of scope (mailboxScope), in one transaction.
func (c *Client) putMessage(m *Message, scope string, cursor uint64) error {
	err := c.store.Update(func(tx *signalstore.Tx) error { return putMessageTx(tx, m, scope, cursor) })
	if err == nil {
		m.meta = nil
	}
	return err
}

// putMessageTx is putMessage within tx (the caller clears m.meta once tx
// commits).
func putMessageTx(tx *signalstore.Tx, m *Message, scope string, cursor uint64) error {
	if m.seq == 0 {
		if b, ok, err := tx.Get(bucketMsgID, m.ID); err != nil {
			return err
		} else if ok && len(b) == 8 {
			m.seq = binary.BigEndian.Uint64(b)
		}
	}
	if m.seq == 0 {
		next := uint64(1)
		if b, ok, err := tx.Get(bucketMeta, metaHistSeq); err != nil {
			return err
		} else if ok && len(b) == 8 {
			next = binary.BigEndian.Uint64(b) + 1
		}
		m.seq = next
		if err := tx.Put(bucketMeta, metaHistSeq, binary.BigEndian.AppendUint64(nil, next)); err != nil {
			return err
		}
		if err := tx.Put(bucketMsgID, m.ID, binary.BigEndian.AppendUint64(nil, next)); err != nil {
			return err
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := tx.Put(bucketHistory, seqKey(m.seq), b); err != nil {
		return err
	}
	for _, w := range m.meta {
		if err := tx.Put(bucketMeta, w.key, w.value); err != nil {
			return err
		}
	}
	if cursor > 0 {
		return tx.Put(bucketMeta, cursorKey(scope), binary.BigEndian.AppendUint64(nil, cursor))
	}
	return nil
}

// Receive cursors are per node: each replica numbers its copy of the
// mailbox itself. A scope is a node's own mailbox (the node id) or a
// group's mailbox on it (mailboxScope).
func cursorKey(scope string) string { return metaCursor + "/" + scope }

// groupScopeSep separates the node id from the group in a group mailbox's
// scope.
const groupScopeSep = "/#"

// mailboxScope is the cursor scope of a delivery from nodeID: its own
// mailbox, or group's.
func mailboxScope(nodeID, group string) string {
	if group == "" {
		return nodeID
	}
	return nodeID + groupScopeSep + group
}

// groupPositions returns this client's positions in the group mailboxes
// of nodeID.
func (c *Client) groupPositions(nodeID string) ([]*tokenimv1.GroupPosition, error) {
	prefix := cursorKey(nodeID + groupScopeSep)
	var out []*tokenimv1.GroupPosition
	err := c.store.ForEach(bucketMeta, func(k string, v []byte) error {
		if strings.HasPrefix(k, prefix) && len(v) == 8 {
			out = append(out, &tokenimv1.GroupPosition{Group: k[len(prefix):], After: binary.BigEndian.Uint64(v)})
		}
		return nil
	})
	return out, err
}

func (c *Client) cursor(scope string) (uint64, error) {
	b, ok, err := c.store.Get(bucketMeta, cursorKey(scope))
	if err != nil || !ok || len(b) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

func (c *Client) setCursor(scope string, cur uint64) error {
	return c.store.Put(bucketMeta, cursorKey(scope), binary.BigEndian.AppendUint64(nil, cur))
}

// History returns the local history, filter may be nil. Messages are in
// local arrival order, except that within one conversation direction
// (same sender and recipient) they are in the sender's order: replicas can
// deliver them out of order, the sender's counter cannot lie about it.
func (c *Client) History(filter func(*Message) bool) ([]Message, error) {
	now := time.Now()
	out, err := c.history(func(m *Message) bool {
		return m.State != StateControl && !expired(m, now) && (filter == nil || filter(m))
	})
	if err != nil {
		return nil, err
	}
	orderConversations(out)
	return out, nil
}

// orderConversations sorts each conversation direction by counter, in the
// positions that conversation occupies.
func orderConversations(ms []Message) {
	pos := map[string][]int{}
	for i, m := range ms {
		if m.Counter > 0 {
			k := m.From + "\x00" + m.To + "\x00" + m.Group
			pos[k] = append(pos[k], i)
		}
	}
	for _, idx := range pos {
		conv := make([]Message, len(idx))
		for j, i := range idx {
			conv[j] = ms[i]
		}
		slices.SortStableFunc(conv, func(a, b Message) int { return cmp.Compare(a.Counter, b.Counter) })
		for j, i := range idx {
			ms[i] = conv[j]
		}
	}
}

func (c *Client) history(filter func(*Message) bool) ([]Message, error) {
	var out []Message
	err := c.store.ForEach(bucketHistory, func(_ string, v []byte) error {
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("history entry: %w", err)
		}
		if filter == nil || filter(&m) {
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

func expired(m *Message, now time.Time) bool {
	return !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt)
}

// purgeExpired deletes local copies whose retention ended (their ids stay
// known, so a late copy is not shown again).
func (c *Client) purgeExpired() error {
	now := time.Now()
	var doomed []string
	err := c.store.ForEach(bucketHistory, func(k string, v []byte) error {
		var m Message
		if json.Unmarshal(v, &m) == nil && expired(&m, now) {
			doomed = append(doomed, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := c.store.Delete(bucketHistory, k); err != nil {
			return err
		}
	}
	return nil
}
