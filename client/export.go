package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
)

// ExportFormat names the audit export format (docs/verify.md).
const ExportFormat = "tokenim-audit/v1"

// Export is an audit file: the messages a user chose to reveal, each with
// the content its envelope committed to and the proof that the envelope
// was anchored. It reveals nothing of other messages: each content has its
// own random nonce, and a proof holds only hashes of other leaves.
// Everything in it is checked: nothing rides along unproven.
type Export struct {
	Format   string          `json:"format"`
	ChainID  string          `json:"chain_id"`
	Messages []ExportMessage `json:"messages"`
}

// ExportMessage is one revealed message: its content (which names sender,
// recipient or group, time and number), the envelope it was committed in,
// and the proof that the envelope was anchored. (Signal messages are
// deniable: no signature of the sender's is in it; the sender's name is
// what the content says, checked by the recipient against the sender the
// node authenticated.)
type ExportMessage struct {
	// Member is, for a group message, the member whose copy is proven (its
	// envelope id derives from the message id and that member).
	Member     string `json:"member,omitempty"`
	EnvelopeID []byte `json:"envelope_id"`
	// CiphertextSHA256 and Commitment are the envelope's, as in the leaf.
	CiphertextSHA256 []byte `json:"ciphertext_sha256"`
	Commitment       []byte `json:"commitment"`
	// Content is the canonical Content (protobuf) the commitment hashes.
	Content []byte `json:"content"`
	// Proof is the LogProof (protobuf).
	Proof []byte `json:"proof"`
}

// Encode is the export's file form (indented JSON and a newline); it is the
// only form VerifyExport accepts, so no byte of a file goes unchecked.
func (ex *Export) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(ex, "", " ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ExportConversation writes an audit file of the messages of one
// conversation (a handle or a group name) that pass filter (nil: all),
// proving each first (Verify); messages that cannot be proven yet are
// reported in skipped.
func (c *Client) ExportConversation(ctx context.Context, conversation string, filter func(*Message) bool) (*Export, []string, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, nil, err
	}
	msgs, err := c.History(func(m *Message) bool {
		in := m.Group == conversation || (m.Group == "" && (m.From == conversation || m.To == conversation))
		return in && (filter == nil || filter(m))
	})
	if err != nil {
		return nil, nil, err
	}
	ex := &Export{Format: ExportFormat, ChainID: st.ChainId}
	var skipped []string
	for _, m := range msgs {
		if m.Evidence == nil || len(m.Evidence.Content) == 0 || len(m.Evidence.Commitment) == 0 {
			skipped = append(skipped, m.ID+": no committed content (undecryptable, or from an older client)")
			continue
		}
		vm, _, err := c.Verify(ctx, m.ID)
		if err != nil {
			skipped = append(skipped, m.ID+": "+err.Error())
			continue
		}
		ev := vm.Evidence
		ex.Messages = append(ex.Messages, ExportMessage{Member: ev.Member, EnvelopeID: ev.EnvelopeID,
			CiphertextSHA256: ev.CiphertextSHA256, Commitment: ev.Commitment, Content: ev.Content, Proof: ev.Proof})
	}
	return ex, skipped, nil
}

// ExportReport is what VerifyExport established.
type ExportReport struct {
	ChainID  string `json:"chain_id"`
	Messages int    `json:"messages"`
	// Gaps counts, per sender and conversation, the numbers missing between
	// the first and last revealed message of that sender (messages not
	// revealed, or never sent); Broken counts revealed messages whose
	// predecessor (by prev_id) is revealed with another id.
	Gaps   int `json:"gaps"`
	Broken int `json:"broken"`
	// Anchored: every message's proof verified.
	Anchored int `json:"anchored"`
	// ValidatorSets are the hashes of the sets that signed the anchors
	// (hex); compare them with a set you trust.
	ValidatorSets []string         `json:"validator_sets"`
	Transcript    []TranscriptLine `json:"transcript"`
}

// TranscriptLine is one proven message.
type TranscriptLine struct {
	From       string    `json:"from"`
	To         string    `json:"to"`
	Counter    uint64    `json:"counter"`
	SentAt     time.Time `json:"sent_at"`
	Text       string    `json:"text"`
	AnchoredAt time.Time `json:"anchored_at"` // when the anchor's block was committed (Anchor.Committed)
	Height     int64     `json:"height"`
}

// ErrExport: the export file does not verify.
var ErrExport = errors.New("export does not verify")

// VerifyExport checks an audit file offline: every message's content
// against its commitment and envelope id, every proof entirely (CheckProof),
// and the senders' numbering for gaps.
func VerifyExport(data []byte) (*ExportReport, error) {
	var ex Export
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ex); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrExport, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrExport)
	}
	if again, err := ex.Encode(); err != nil || !bytes.Equal(again, data) {
		return nil, fmt.Errorf("%w: not in the canonical form (re-encoding differs)", ErrExport)
	}
	if ex.Format != ExportFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrExport, ex.Format, ExportFormat)
	}
	rep := &ExportReport{ChainID: ex.ChainID, Messages: len(ex.Messages)}
	sets := map[string]bool{}
	type dir struct{ from, to string }
	byDir := map[dir][]*tokenimv1.Content{}
	for i, m := range ex.Messages {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%w: message %d: %s", ErrExport, i+1, fmt.Sprintf(format, args...))
		}
		if !bytes.Equal(Commitment(m.Content), m.Commitment) {
			return nil, fail("content does not match its commitment")
		}
		var content tokenimv1.Content
		if err := codec.Unmarshal(m.Content, &content, MaxTextBytes+4096); err != nil {
			return nil, fail("content: %v", err)
		}
		if content.From == "" {
			return nil, fail("content does not name its sender")
		}
		wantID, to := content.MessageId, content.To
		if content.Group != "" {
			wantID, to = groupEnvelopeID(content.MessageId, m.Member), content.Group
		} else if m.Member != "" || to == "" {
			return nil, fail("a 1:1 message names no recipient, or a group member")
		}
		if !bytes.Equal(wantID, m.EnvelopeID) {
			return nil, fail("content belongs to envelope %x, not %x", wantID, m.EnvelopeID)
		}
		var p tokenimv1.LogProof
		if err := codec.Unmarshal(m.Proof, &p, maxProof); err != nil {
			return nil, fail("proof: %v", err)
		}
		a, err := CheckProof(&p, ex.ChainID, &Evidence{EnvelopeID: m.EnvelopeID, CiphertextSHA256: m.CiphertextSHA256, Commitment: m.Commitment})
		if err != nil {
			return nil, fail("%v", err)
		}
		rep.Anchored++
		sets[a.ValidatorsHash] = true
		rep.Transcript = append(rep.Transcript, TranscriptLine{From: content.From, To: to, Counter: content.Counter,
			SentAt: time.UnixMilli(content.SentAtMs).UTC(), Text: content.GetText().GetBody(), AnchoredAt: a.Committed, Height: a.Height})
		byDir[dir{content.From, to}] = append(byDir[dir{content.From, to}], &content)
	}
	for _, cs := range byDir {
		slices.SortFunc(cs, func(a, b *tokenimv1.Content) int { return int(a.Counter) - int(b.Counter) })
		for i := 1; i < len(cs); i++ {
			prev, cur := cs[i-1], cs[i]
			if cur.Counter == prev.Counter+1 {
				if !bytes.Equal(cur.PrevId, prev.MessageId) {
					rep.Broken++
				}
			} else if cur.Counter > prev.Counter {
				rep.Gaps += int(cur.Counter - prev.Counter - 1)
			} else {
				rep.Broken++ // the same number twice
			}
		}
	}
	for h := range sets {
		rep.ValidatorSets = append(rep.ValidatorSets, h)
	}
	slices.Sort(rep.ValidatorSets)
	return rep, nil
}
