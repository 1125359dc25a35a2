package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/msgproof"
)

// StateAnchored is reported by Verify (and kept on the message as
// Anchor) once a message's envelope is proven in a node's anchored log.
const StateAnchored = "anchored"

var (
	// ErrNotAnchored: the node stores the envelope but its log is not
	// anchored that far yet (retry in a second or two).
	ErrNotAnchored = errors.New("not anchored yet")
	// ErrNoEvidence: the message has no envelope this client can prove
	// (an undecryptable message, or one from before proofs existed).
	ErrNoEvidence = errors.New("this message has no envelope to prove")
	// ErrProof: a proof did not verify, or does not prove this message.
	ErrProof = errors.New("proof rejected")
)

// Anchor is what a verified proof says about a message.
type Anchor struct {
	Height int64 `json:"height"`
	// Time is the anchor block's time: when the block before it was
	// committed (CometBFT's BFT time), which on a quiet chain can be before
	// the message was sent. Committed is when the anchor's block itself was
	// committed: the message was on chain by then.
	Time        time.Time `json:"time"`
	Committed   time.Time `json:"committed"`
	Node        string    `json:"node"`
	LeafIndex   uint64    `json:"leaf_index"`
	TreeSize    uint64    `json:"tree_size"`
	SignedPower int64     `json:"signed_power"`
	TotalPower  int64     `json:"total_power"`
	// ValidatorsHash is the hash of the set that signed (hex).
	ValidatorsHash string `json:"validators_hash"`
	// AppHash is the anchor block's app hash: the root of the chain state
	// just before it (proofs of group membership are checked against it).
	AppHash []byte `json:"app_hash,omitempty"`
}

// Verify fetches the proof that message id is in the log of the node this
// client talks to and anchored on chain, checks it entirely (msgproof:
// inclusion, anchor transaction and signature, block, result, commit of
// more than 2/3 of the validators' power) and checks that it proves this
// message: the envelope id, the ciphertext hash and the content
// commitment this client recorded. The proof is kept with the message
// (Export includes it).
func (c *Client) Verify(ctx context.Context, id string) (*Message, *Anchor, error) {
	m, err := c.message(id)
	if err != nil {
		return nil, nil, err
	}
	ev := m.Evidence
	if ev == nil || len(ev.EnvelopeID) == 0 {
		return m, nil, ErrNoEvidence
	}
	st, err := c.Status(ctx)
	if err != nil {
		return m, nil, err
	}
	var p *tokenimv1.LogProof
	if len(ev.Proof) > 0 {
		p = new(tokenimv1.LogProof)
		if err := codec.Unmarshal(ev.Proof, p, maxProof); err != nil {
			p = nil
		}
	}
	if p == nil {
		res, err := c.node.GetMessageProof(ctx, connect.NewRequest(&tokenimv1.GetMessageProofRequest{EnvelopeId: ev.EnvelopeID}))
		if err != nil {
			if connect.CodeOf(err) == connect.CodeNotFound {
				return m, nil, fmt.Errorf("%w: the node's log has no envelope %x", ErrProof, ev.EnvelopeID)
			}
			return m, nil, c.netErr("get proof", err)
		}
		if res.Msg.State != StateAnchored {
			return m, nil, fmt.Errorf("%w: stored at leaf %d of the node's log", ErrNotAnchored, res.Msg.LeafIndex)
		}
		p = new(tokenimv1.LogProof)
		if err := codec.Unmarshal(res.Msg.Proof, p, maxProof); err != nil {
			return m, nil, fmt.Errorf("%w: %v", ErrProof, err)
		}
	}
	a, err := CheckProof(p, st.ChainId, ev)
	if err != nil {
		return m, nil, err
	}
	if ev.Proof, err = codec.Marshal(p); err != nil {
		return m, nil, err
	}
	m.Anchor = a
	return m, a, c.putMessage(m, "", 0)
}

// maxProof caps a decoded LogProof.
const maxProof = 1 << 20

// CheckProof verifies p for chain chainID and that it proves the envelope
// of ev.
func CheckProof(p *tokenimv1.LogProof, chainID string, ev *Evidence) (*Anchor, error) {
	r, err := msgproof.Verify(p, chainID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProof, err)
	}
	commitment := ev.Commitment
	if len(commitment) == 0 {
		commitment = make([]byte, 32)
	}
	switch {
	case !bytes.Equal(r.EnvelopeID, ev.EnvelopeID):
		return nil, fmt.Errorf("%w: it proves envelope %x, not %x", ErrProof, r.EnvelopeID, ev.EnvelopeID)
	case !bytes.Equal(r.CiphertextSHA256, ev.CiphertextSHA256):
		return nil, fmt.Errorf("%w: the anchored ciphertext is not the one received", ErrProof)
	case !bytes.Equal(r.Commitment, commitment):
		return nil, fmt.Errorf("%w: the anchored commitment is not the message's", ErrProof)
	}
	return &Anchor{Height: r.Height, Time: r.Time.UTC(), Committed: r.Committed.UTC(), Node: r.NodeID, LeafIndex: r.LeafIndex, TreeSize: r.TreeSize,
		SignedPower: r.SignedPower, TotalPower: r.TotalPower, ValidatorsHash: hex.EncodeToString(r.ValidatorsHash), AppHash: r.AppHash}, nil
}

// message reads one history entry by id.
func (c *Client) message(id string) (*Message, error) {
	seq, ok, err := c.store.Get(bucketMsgID, id)
	if err != nil {
		return nil, err
	}
	if !ok || len(seq) != 8 {
		return nil, fmt.Errorf("%w: %s", ErrUnknownMessage, id)
	}
	b, ok, err := c.store.Get(bucketHistory, seqKey(binary.BigEndian.Uint64(seq)))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s (deleted: its retention ended)", ErrUnknownMessage, id)
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("history entry: %w", err)
	}
	m.seq = binary.BigEndian.Uint64(seq)
	return &m, nil
}
