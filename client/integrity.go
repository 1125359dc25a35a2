package client

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tokenim/tokenim/internal/signalstore"
	"slices"
	"strings"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// commitDomain prefixes the content a message commitment hashes.
const commitDomain = "tokenim/commit/v1\x00"

// ErrCommitment: the envelope's commitment is not the hash of its content
// (a sender that commits to something it did not send).
var ErrCommitment = errors.New("the envelope's commitment does not match its content")

// Commitment is SHA-256(commitDomain || content), content being the
// unpadded Content bytes inside the encryption (Envelope.commitment).
func Commitment(content []byte) []byte {
	h := sha256.New()
	h.Write([]byte(commitDomain))
	h.Write(content)
	return h.Sum(nil)
}

// Conversation directions: one sender's numbered messages to one recipient
// or group. Outgoing numbering lives under out_counter/<key> and
// out_last/<key>; what was received under in_seen/<sender>/<key>.
const (
	metaOutLast = "out_last/"
	metaInSeen  = "in_seen/"
)

// stampTx numbers content in its conversation (key: a handle, or
// "group/<name>") within tx: counter, the previous message's id and a
// fresh nonce. The number is taken only if tx commits, with the sender's
// ratchet or sender-key step (seal, groupEncrypt: called with c.mu held).
func stampTx(tx *signalstore.Tx, key string, content *tokenimv1.Content) error {
	content.Nonce = make([]byte, 32)
	if _, err := rand.Read(content.Nonce); err != nil {
		return err
	}
	n := uint64(0)
	if b, ok, err := tx.Get(bucketMeta, "out_counter/"+key); err != nil {
		return err
	} else if ok && len(b) == 8 {
		n = binary.BigEndian.Uint64(b)
	}
	n++
	prev, _, err := tx.Get(bucketMeta, metaOutLast+key)
	if err != nil {
		return err
	}
	content.Counter, content.PrevId = n, prev
	if err := tx.Put(bucketMeta, "out_counter/"+key, binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return err
	}
	return tx.Put(bucketMeta, metaOutLast+key, content.MessageId)
}

// seen is what arrived of one direction: every counter up to Contiguous,
// and Above (sorted) beyond it.
type seen struct {
	Contiguous uint64   `json:"contiguous"`
	Above      []uint64 `json:"above,omitempty"`
}

// maxAbove bounds the counters kept beyond a gap; older gaps are given up
// (still reported once, then forgotten).
const maxAbove = 4096

// track records counter n from sender in direction key, with message m
// (putMessage writes it in m's transaction: one commit, and nothing is
// recorded for a message not stored), and reports whether n had arrived
// before (a replay: same number, another message).
// Within a transaction (tx set) it reads through it.
func (c *Client) track(tx *signalstore.Tx, m *Message, sender, key string, n uint64) (replayed bool, err error) {
	if n == 0 {
		return false, nil
	}
	k := metaInSeen + sender + "/" + key
	get := c.store.Get
	if tx != nil {
		get = tx.Get
	}
	var s seen
	if b, ok, err := get(bucketMeta, k); err != nil {
		return false, err
	} else if ok {
		if err := json.Unmarshal(b, &s); err != nil {
			return false, fmt.Errorf("gap record: %w", err)
		}
	}
	if n <= s.Contiguous || slices.Contains(s.Above, n) {
		return true, nil
	}
	s.Above = append(s.Above, n)
	slices.Sort(s.Above)
	for len(s.Above) > 0 && s.Above[0] == s.Contiguous+1 {
		s.Contiguous, s.Above = s.Above[0], s.Above[1:]
	}
	for len(s.Above) > maxAbove {
		s.Contiguous, s.Above = s.Above[0], s.Above[1:]
	}
	b, err := json.Marshal(s)
	if err != nil {
		return false, err
	}
	m.meta = append(m.meta, metaWrite{k, b})
	return false, nil
}

// startsAt records that this account reads sender's messages in direction
// key from number n on (a sender key handed to a new reader says so): the
// numbers below that never arrived are not missing.
func (c *Client) startsAt(sender, key string, n uint64) error {
	if n <= 1 {
		return nil
	}
	k := metaInSeen + sender + "/" + key
	return c.store.Update(func(tx *signalstore.Tx) error {
		var s seen
		if b, ok, err := tx.Get(bucketMeta, k); err != nil {
			return err
		} else if ok {
			if err := json.Unmarshal(b, &s); err != nil {
				return fmt.Errorf("gap record: %w", err)
			}
		}
		if s.Contiguous >= n-1 {
			return nil
		}
		s.Contiguous = n - 1
		s.Above = slices.DeleteFunc(s.Above, func(a uint64) bool { return a <= n-1 })
		for len(s.Above) > 0 && s.Above[0] == s.Contiguous+1 {
			s.Contiguous, s.Above = s.Above[0], s.Above[1:]
		}
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return tx.Put(bucketMeta, k, b)
	})
}

// Gap is a run of messages a sender numbered but this client never
// received: dropped by a node, or still on their way from another replica.
type Gap struct {
	From    string   `json:"from"`
	To      string   `json:"to"`              // this account, or the group
	Group   string   `json:"group,omitempty"` // set for group conversations
	Missing []uint64 `json:"missing"`         // the sender's counters
}

// Gaps lists, per conversation direction, the counters missing below the
// highest one received. (A dropped last message shows once a later one
// arrives.)
func (c *Client) Gaps() ([]Gap, error) {
	var out []Gap
	err := c.store.ForEach(bucketMeta, func(k string, v []byte) error {
		rest, ok := strings.CutPrefix(k, metaInSeen)
		if !ok {
			return nil
		}
		var s seen
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("gap record: %w", err)
		}
		if len(s.Above) == 0 {
			return nil
		}
		from, key, _ := strings.Cut(rest, "/")
		g := Gap{From: from, To: c.Handle()}
		if name, ok := strings.CutPrefix(key, "group/"); ok {
			g.To, g.Group = name, name
		}
		next := s.Contiguous + 1
		for _, a := range s.Above {
			for ; next < a && len(g.Missing) < maxAbove; next++ {
				g.Missing = append(g.Missing, next)
			}
			next = a + 1
		}
		out = append(out, g)
		return nil
	})
	return out, err
}

// dirKey names the direction of a received envelope for track.
func dirKey(env *tokenimv1.Envelope, me string) string {
	if env.Type == tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP {
		return "group/" + env.Group
	}
	return me
}

// Evidence is what later proves a message (Verify, Export): the envelope's
// leaf inputs and, for messages this client can reveal, the committed
// content.
type Evidence struct {
	EnvelopeID       []byte `json:"envelope_id"`
	CiphertextSHA256 []byte `json:"ciphertext_sha256"`
	Commitment       []byte `json:"commitment,omitempty"`
	// Content is the unpadded Content the commitment hashes.
	Content []byte `json:"content,omitempty"`
	// Proof is the LogProof once the message is anchored.
	Proof []byte `json:"proof,omitempty"`
	// Member is, for a group message, the member whose copy this is.
	Member string `json:"member,omitempty"`
}

func evidenceOf(env *tokenimv1.Envelope, raw []byte) *Evidence {
	h := sha256.Sum256(env.Ciphertext)
	return &Evidence{EnvelopeID: env.Id, CiphertextSHA256: h[:], Commitment: env.Commitment, Content: raw}
}

// checkCommitment verifies env.commitment against the content bytes, and
// that the content names its envelope's sender (and recipient).
func checkCommitment(env *tokenimv1.Envelope, raw []byte, content *tokenimv1.Content) error {
	if content.From != "" && content.From != env.From {
		return ErrCommitment
	}
	if content.To != "" && env.Type != tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP && content.To != env.To {
		return ErrCommitment
	}
	if len(env.Commitment) == 0 {
		return nil // a client that does not commit: nothing to check, nothing to prove later
	}
	if string(env.Commitment) != string(Commitment(raw)) {
		return ErrCommitment
	}
	return nil
}
