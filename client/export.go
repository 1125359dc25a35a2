package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	ics23 "github.com/cosmos/ics23/go"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/ledger"
)

// ExportFormat names the audit export format (docs/verify.md). v2 adds
// the proven member lists of the groups (Export.Groups); VerifyExport
// still reads v1 files, which have none.
const (
	ExportFormat   = "tokenim-audit/v2"
	exportFormatV1 = "tokenim-audit/v1"
)

// Export is an audit file: the messages a user chose to reveal, each with
// the content its envelope committed to and the proof that the envelope
// was anchored. It reveals nothing of other messages: each content has its
// own random nonce, and a proof holds only hashes of other leaves.
// Everything in it is checked: nothing rides along unproven.
type Export struct {
	Format   string          `json:"format"`
	ChainID  string          `json:"chain_id"`
	Messages []ExportMessage `json:"messages"`
	// Groups holds, for each group message, its group's record as the
	// state just before the message's anchor block had it: who was a
	// member then, with which role. Each is checked against the app hash
	// of that block, which the message's proof authenticates.
	Groups []ExportGroup `json:"groups,omitempty"`
}

// ExportGroup is a group's record in the state block Height left, with its
// ICS23 proof (protobuf CommitmentProof) against the app hash of block
// Height+1.
type ExportGroup struct {
	Name   string `json:"name"`
	Height int64  `json:"height"`
	Record []byte `json:"record"`
	Proof  []byte `json:"proof"`
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
	proven := map[groupAt]bool{}
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
		if at := (groupAt{m.Group, vm.Anchor.Height - 1}); m.Group != "" && !proven[at] {
			g, err := c.groupAtHeight(ctx, at)
			if err != nil {
				skipped = append(skipped, m.ID+": the group's members: "+err.Error())
				continue
			}
			proven[at] = true
			ex.Groups = append(ex.Groups, *g)
		}
		ev := vm.Evidence
		ex.Messages = append(ex.Messages, ExportMessage{Member: ev.Member, EnvelopeID: ev.EnvelopeID,
			CiphertextSHA256: ev.CiphertextSHA256, Commitment: ev.Commitment, Content: ev.Content, Proof: ev.Proof})
	}
	return ex, skipped, nil
}

// Membership is who a group message's sender and this account were in the
// group just before the message's anchor block, as the chain proves it.
type Membership struct {
	Group      string  `json:"group"`
	Height     int64   `json:"height"` // the state block Height left; the anchor block is Height+1
	Sender     string  `json:"sender"`
	SenderRole string  `json:"sender_role"` // "not a member" if the record does not list it
	Reader     string  `json:"reader"`      // this account
	ReaderRole string  `json:"reader_role"`
	Proven     *Proven `json:"proven"`
}

// MembershipAt proves the roles, just before its anchor block, of the
// sender of a group message that Verify proved (a its anchor) and of this
// account.
func (c *Client) MembershipAt(ctx context.Context, m *Message, a *Anchor) (*Membership, error) {
	if m.Group == "" || a == nil {
		return nil, fmt.Errorf("%s is not an anchored group message", m.ID)
	}
	g, pr, err := c.ProveGroup(ctx, m.Group, a.Height-1)
	if err != nil {
		return nil, err
	}
	return &Membership{Group: m.Group, Height: a.Height - 1, Sender: m.From, SenderRole: roleOrNone(g, m.From),
		Reader: c.Handle(), ReaderRole: roleOrNone(g, c.Handle()), Proven: pr}, nil
}

type groupAt struct {
	name   string
	height int64
}

// groupAtHeight fetches and checks a group's record in the state at.height
// left, for an export.
func (c *Client) groupAtHeight(ctx context.Context, at groupAt) (*ExportGroup, error) {
	res, floor, err := c.stateProof(ctx, "group/"+at.name, at.height)
	if err != nil {
		return nil, err
	}
	if _, _, err := c.checkGroupProof(ctx, at.name, at.height, res, floor); err != nil {
		return nil, err
	}
	return &ExportGroup{Name: at.name, Height: at.height, Record: res.Value, Proof: res.Proof}, nil
}

// checkExportGroup checks g against appHash (the app hash of block
// g.Height+1) and returns the record it proves.
func checkExportGroup(g *ExportGroup, appHash []byte) (*tokenimv1.GroupRecord, error) {
	var p ics23.CommitmentProof
	if err := p.Unmarshal(g.Proof); err != nil {
		return nil, fmt.Errorf("proof: %v", err)
	}
	if again, err := p.Marshal(); err != nil || !bytes.Equal(again, g.Proof) {
		return nil, errors.New("proof is not canonically encoded")
	}
	if len(g.Record) == 0 || !ics23.VerifyMembership(ics23.IavlSpec, appHash, &p, ledger.GroupStateKey(g.Name), g.Record) {
		return nil, fmt.Errorf("the record of %s does not verify against block %d's app hash", g.Name, g.Height+1)
	}
	rec, err := ledger.DecodeGroupValue(g.Record)
	if err != nil || rec.Name != g.Name {
		return nil, fmt.Errorf("the record of %s does not decode as it", g.Name)
	}
	return rec, nil
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
	// NotMembers counts group messages whose sender the proven record of
	// the group (just before the anchor block) does not list: removed
	// between sending and anchoring, or sent through a node that broke the
	// rules.
	NotMembers int `json:"not_members,omitempty"`
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
	// For a group message: the member whose copy is proven, and the roles
	// of the sender and of that member in the state just before the anchor
	// block, as the chain proves it ("not a member" if absent).
	Member     string `json:"member,omitempty"`
	SenderRole string `json:"sender_role,omitempty"`
	MemberRole string `json:"member_role,omitempty"`
}

const notAMember = "not a member"

func roleOrNone(g *tokenimv1.GroupRecord, h string) string {
	if r := ledger.Role(g, h); r != "" {
		return r
	}
	return notAMember
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
	if ex.Format != ExportFormat && (ex.Format != exportFormatV1 || ex.Groups != nil) {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrExport, ex.Format, ExportFormat)
	}
	rep := &ExportReport{ChainID: ex.ChainID, Messages: len(ex.Messages)}
	groups := map[groupAt]*ExportGroup{}
	for i := range ex.Groups {
		g := &ex.Groups[i]
		at := groupAt{g.Name, g.Height}
		if groups[at] != nil {
			return nil, fmt.Errorf("%w: group %s at block %d twice", ErrExport, g.Name, g.Height)
		}
		groups[at] = g
	}
	used := map[groupAt]bool{}
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
			to = content.Group
			if m.Member != "" { // a member's copy (before group mailboxes)
				wantID = groupEnvelopeID(content.MessageId, m.Member)
			}
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
		line := TranscriptLine{From: content.From, To: to, Counter: content.Counter,
			SentAt: time.UnixMilli(content.SentAtMs).UTC(), Text: transcriptText(&content), AnchoredAt: a.Committed, Height: a.Height}
		if content.Group != "" && ex.Format != exportFormatV1 {
			at := groupAt{content.Group, a.Height - 1}
			g := groups[at]
			if g == nil {
				return nil, fail("no record of group %s before block %d", content.Group, a.Height)
			}
			rec, err := checkExportGroup(g, a.AppHash)
			if err != nil {
				return nil, fail("%v", err)
			}
			used[at] = true
			line.Member, line.SenderRole = m.Member, roleOrNone(rec, content.From)
			if m.Member != "" {
				line.MemberRole = roleOrNone(rec, m.Member)
			}
			if line.SenderRole == notAMember {
				rep.NotMembers++
			}
		}
		rep.Transcript = append(rep.Transcript, line)
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
	for at := range groups {
		if !used[at] {
			return nil, fmt.Errorf("%w: the record of group %s at block %d proves no message's group", ErrExport, at.name, at.height)
		}
	}
	for h := range sets {
		rep.ValidatorSets = append(rep.ValidatorSets, h)
	}
	slices.Sort(rep.ValidatorSets)
	return rep, nil
}

// transcriptText is what an exported message says: its text, or what it is
// (a file, a policy notice: the policy's id, which the chain resolves).
func transcriptText(content *tokenimv1.Content) string {
	switch {
	case content.GetFile() != nil:
		return fileText(content.GetFile())
	case content.GetPolicyNotice() != nil:
		if id := content.GetPolicyNotice().PolicyId; id != "" {
			return "[notice: attached policy " + id + "]"
		}
		return "[notice: detached the conversation's policy]"
	}
	return content.GetText().GetBody()
}
