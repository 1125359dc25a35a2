package client

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/policy"
	"github.com/tokenim/tokenim/internal/signalstore"
	"go.mau.fi/libsignal/groups"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/signalerror"
)

// Group errors.
var (
	ErrUnknownGroup = ledger.ErrUnknownGroup
	ErrNotMember    = errors.New("not a member of this group")
	ErrDenied       = ledger.ErrDenied
)

// Group reads a group's members, roles, policy and epoch from the chain,
// proven (ProveGroup at the latest height): the member list a client hands
// its sender key to, and accepts keys and posts from, is the one the
// validators signed, so a node cannot slip a ghost member into it.
func (c *Client) Group(ctx context.Context, name string) (*tokenimv1.GroupRecord, error) {
	g, _, err := c.ProveGroup(ctx, name, 0)
	return g, err
}

// CreateGroup creates a group owned by this account (policy: a deployed
// policy's name or id, "" for the default).
func (c *Client) CreateGroup(ctx context.Context, name string, members []string, policyName string) error {
	hs := make([]string, 0, len(members))
	for _, m := range members {
		h, err := ledger.NormalizeHandle(m)
		if err != nil {
			return err
		}
		hs = append(hs, h)
	}
	return c.groupTx(ctx, &tokenimv1.TxBody_CreateGroup{CreateGroup: &tokenimv1.CreateGroup{Name: name, Members: hs, Policy: policyName}})
}

// GroupAdd adds a member with a role ("" = member).
func (c *Client) GroupAdd(ctx context.Context, group, member, role string) error {
	h, err := ledger.NormalizeHandle(member)
	if err != nil {
		return err
	}
	return c.groupTx(ctx, &tokenimv1.TxBody_GroupAddMember{GroupAddMember: &tokenimv1.GroupAddMember{Group: group, Member: h, Role: role}})
}

// GroupJoin adds this account to a group whose policy lets it join by
// itself (can_join), as a member or, with role "reader", a reader. Members
// hand it their sender keys when they next post: it reads from then on.
func (c *Client) GroupJoin(ctx context.Context, group, role string) error {
	return c.groupTx(ctx, &tokenimv1.TxBody_GroupAddMember{GroupAddMember: &tokenimv1.GroupAddMember{Group: group, Member: c.Handle(), Role: role}})
}

// GroupRemove removes a member; every remaining member then uses new
// sender keys (the group's epoch grows), so the removed one reads nothing
// sent afterwards.
func (c *Client) GroupRemove(ctx context.Context, group, member string) error {
	h, err := ledger.NormalizeHandle(member)
	if err != nil {
		return err
	}
	return c.groupTx(ctx, &tokenimv1.TxBody_GroupRemoveMember{GroupRemoveMember: &tokenimv1.GroupRemoveMember{Group: group, Member: h}})
}

// GroupLeave leaves a group.
func (c *Client) GroupLeave(ctx context.Context, group string) error {
	return c.groupTx(ctx, &tokenimv1.TxBody_GroupLeave{GroupLeave: &tokenimv1.GroupLeave{Group: group}})
}

// GroupSetRole sets a member's role.
func (c *Client) GroupSetRole(ctx context.Context, group, member, role string) error {
	h, err := ledger.NormalizeHandle(member)
	if err != nil {
		return err
	}
	return c.groupTx(ctx, &tokenimv1.TxBody_GroupSetRole{GroupSetRole: &tokenimv1.GroupSetRole{Group: group, Member: h, Role: role}})
}

// SetGroupPolicy replaces group's policy (a deployed policy's name or id;
// "" the default). Only an owner may, and a group under legal hold only by
// a policy that keeps the hold. The group's epoch grows, so every member
// rotates its sender key (the new policy may let fewer read); the members
// are told with a notice in the group, which also hands them this
// account's new sender key.
func (c *Client) SetGroupPolicy(ctx context.Context, group, policyName string) error {
	if err := c.groupTx(ctx, &tokenimv1.TxBody_GroupSetPolicy{GroupSetPolicy: &tokenimv1.GroupSetPolicy{Group: group, Policy: policyName}}); err != nil {
		return err
	}
	g, err := c.Group(ctx, group)
	if err == nil {
		var text string
		if text, err = c.policyNoticeText(ctx, "", g, g.PolicyId, false); err == nil {
			notice := &tokenimv1.Content{Body: &tokenimv1.Content_PolicyNotice{PolicyNotice: &tokenimv1.PolicyNotice{PolicyId: g.PolicyId}}}
			if _, err = c.sendGroupContent(ctx, group, notice, text); errors.Is(err, ErrQueued) {
				err = nil
			}
		}
	}
	if err != nil {
		return fmt.Errorf("the policy is set; telling the members: %w", err)
	}
	return nil
}

func (c *Client) groupTx(ctx context.Context, msg any) error {
	acct, err := c.Lookup(ctx, c.Handle())
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	body := &tokenimv1.TxBody{ChainId: st.ChainId, Signer: c.Handle(), Sequence: acct.Sequence}
	switch m := msg.(type) {
	case *tokenimv1.TxBody_CreateGroup:
		body.Msg = m
	case *tokenimv1.TxBody_GroupAddMember:
		body.Msg = m
	case *tokenimv1.TxBody_GroupRemoveMember:
		body.Msg = m
	case *tokenimv1.TxBody_GroupLeave:
		body.Msg = m
	case *tokenimv1.TxBody_GroupSetRole:
		body.Msg = m
	case *tokenimv1.TxBody_GroupSetPolicy:
		body.Msg = m
	}
	_, err = c.broadcast(ctx, body)
	return err
}

// senderKeyName names a member's sender key for one group epoch.
func senderKeyName(group string, epoch uint64, handle string) *protocol.SenderKeyName {
	return protocol.NewSenderKeyName(fmt.Sprintf("%s#%d", group, epoch), protocol.NewSignalAddress(handle, DeviceID))
}

// groupEnvelopeID gave each member's copy of a group message its own
// envelope id, bound to the message id inside the encryption, before group
// posts were stored once: such copies are still read and verified.
func groupEnvelopeID(messageID []byte, recipient string) []byte {
	h := sha256.Sum256(append(append([]byte("tokenim/group-envelope/v1\x00"), messageID...), recipient...))
	return h[:16]
}

// SendGroup encrypts text once with this account's sender key for the
// group's current epoch (handing the key to members who lack it, over
// pairwise sessions) and sends it once: the nodes store it in the group's
// mailbox for every member its policy lets read it.
func (c *Client) SendGroup(ctx context.Context, group, text string) (*Message, error) {
	if len(text) == 0 {
		return nil, ErrEmpty
	}
	if len(text) > MaxTextBytes {
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrTooLarge, len(text), MaxTextBytes)
	}
	return c.sendGroupContent(ctx, group, &tokenimv1.Content{Body: &tokenimv1.Content_Text{Text: &tokenimv1.Text{Body: text}}}, text)
}

// sendGroupContent encrypts content once for the group and sends it as one
// group post; text is what the history shows. As sendContent
// does, it queues what the network cannot take yet: unsealed when the
// member list cannot be had (it is proven against the chain, from a node)
// or messages queued before it wait.
func (c *Client) sendGroupContent(ctx context.Context, group string, content *tokenimv1.Content, text string) (*Message, error) {
	waiting, why, err := c.flushConversation(ctx, group) // messages queued before this one go first
	if err != nil {
		return nil, err
	}
	if waiting {
		return c.queueDraft("", group, content, text, why)
	}
	msg, reqs, g, err := c.sealGroup(ctx, group, content, text)
	if err != nil {
		if retryable(err) && c.knowsGroup(group) {
			return c.queueDraft("", group, content, text, err)
		}
		return nil, err
	}
	if f := content.GetFile(); f != nil {
		if msg.File, err = c.rememberFile(msg.ID, f); err != nil {
			return nil, err
		}
	}
	if err := c.putMessage(msg, "", 0); err != nil {
		return nil, err
	}
	if rest, err := c.fanOut(ctx, reqs); err != nil {
		if retryable(err) {
			return msg, c.queue(msg, group, rest, err)
		}
		msg.State = StateFailed
		c.putMessage(msg, "", 0)
		return nil, err
	}
	msg.State = StateStored
	if exp, err := c.groupExpiry(ctx, g, msg.SentAt); err == nil {
		msg.ExpiresAt = exp
	}
	return msg, c.putMessage(msg, "", 0)
}

// sealGroup checks that this account may post to group under its policy
// (with the member list proven against the chain), hands its sender key to
// the readers who lack it, and encrypts content once: the message (not
// stored yet) and the Send request of the post. A content that has its
// id already (a message queued unsealed) keeps it and its time; the policy
// is applied as of now, as the nodes will.
func (c *Client) sealGroup(ctx context.Context, group string, content *tokenimv1.Content, text string) (*Message, []*tokenimv1.SendRequest, *tokenimv1.GroupRecord, error) {
	g, err := c.Group(ctx, group)
	if err != nil {
		return nil, nil, nil, err
	}
	if ledger.Role(g, c.Handle()) == "" {
		return nil, nil, nil, fmt.Errorf("%w: %s", ErrNotMember, group)
	}
	now := time.Now()
	if err := c.mayPost(ctx, g, now); err != nil {
		return nil, nil, nil, err
	}
	to, err := c.readers(ctx, g, now)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := c.distributeSenderKey(ctx, g, to); err != nil {
		return nil, nil, nil, err
	}
	id, sent, err := messageIdentity(content)
	if err != nil {
		return nil, nil, nil, err
	}
	content.Group, content.From = group, c.Handle()
	c.mu.Lock()
	ct, raw, err := c.groupEncrypt(ctx, g, content, to)
	c.mu.Unlock()
	if err != nil {
		return nil, nil, nil, err
	}
	msg := &Message{ID: hex.EncodeToString(id), From: c.Handle(), To: group, Group: group, Text: text, SentAt: sent.UTC(), Outgoing: true, State: StateSending, Counter: content.Counter,
		Notice: content.GetPolicyNotice() != nil}
	post := &tokenimv1.Envelope{Id: id, Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP, Group: g.Name, Epoch: g.Epoch,
		Ciphertext: ct, Commitment: Commitment(raw)}
	msg.Evidence = evidenceOf(post, raw)
	return msg, []*tokenimv1.SendRequest{{Envelopes: []*tokenimv1.Envelope{post}}}, g, nil
}

// knowsGroup reports whether the history has a message of group: a name
// the network cannot be asked about is queued only if it is known here (a
// mistyped one is refused at once, not later).
func (c *Client) knowsGroup(group string) bool {
	found := false
	c.store.ForEach(bucketHistory, func(_ string, v []byte) error {
		var m Message
		if json.Unmarshal(v, &m) == nil && m.Group == group {
			found = true
			return errStop
		}
		return nil
	})
	return found
}

// groupExpiry computes, as the nodes do, when the group's policy deletes a
// message sent now (zero: kept).
func (c *Client) groupExpiry(ctx context.Context, g *tokenimv1.GroupRecord, now time.Time) (time.Time, error) {
	p, err := c.groupPolicy(ctx, g)
	if err != nil {
		return time.Time{}, err
	}
	lim, err := p.Limits(ledger.GroupVars(g, c.Handle(), now)) // as the nodes compute it
	if err != nil || lim.LegalHold || lim.Retention <= 0 {
		return time.Time{}, err
	}
	return now.Add(lim.Retention).UTC(), nil
}

// policies caches compiled policies by id (an id is the hash of the
// source: a policy never changes).
var policies sync.Map

// groupPolicy returns g's compiled policy.
func (c *Client) groupPolicy(ctx context.Context, g *tokenimv1.GroupRecord) (*policy.Policy, error) {
	return c.policyByID(ctx, g.PolicyId)
}

// policyByID returns the compiled policy with id: the default one, or one
// deployed on chain (its source checked against the id).
func (c *Client) policyByID(ctx context.Context, id string) (*policy.Policy, error) {
	if p, ok := policies.Load(id); ok {
		return p.(*policy.Policy), nil
	}
	src := policy.Defaults
	if id != policy.ID(policy.Defaults) {
		rec, err := GetPolicy(ctx, c.cfg, id)
		if err != nil {
			return nil, err
		}
		if policy.ID(rec.Source) != id {
			return nil, fmt.Errorf("%w: the node sent a policy whose hash is not %s", ErrUnknownPolicy, id)
		}
		src = rec.Source
	}
	return compiled(src)
}

// compiled returns source compiled, once per policy id (the hash of the
// source: a policy never changes).
func compiled(source string) (*policy.Policy, error) {
	id := policy.ID(source)
	if p, ok := policies.Load(id); ok {
		return p.(*policy.Policy), nil
	}
	p, err := policy.Compile(source)
	if err != nil {
		return nil, err
	}
	policies.Store(id, p)
	return p, nil
}

// mayPost refuses, before any sender key goes out, a post the group's
// policy refuses whatever the node's state: can_post, read_only_after (the
// node checks those again, and the size and rate it alone knows).
func (c *Client) mayPost(ctx context.Context, g *tokenimv1.GroupRecord, now time.Time) error {
	p, err := c.groupPolicy(ctx, g)
	if err != nil {
		return err
	}
	v := ledger.GroupVars(g, c.Handle(), now)
	v.Action = "post"
	d, err := p.Decide(v)
	if err != nil {
		return err
	}
	if !d.Allowed && d.Rule != "rate" && d.Rule != "max_size" {
		return fmt.Errorf("%w: post: rule %s: %s", ErrDenied, d.Rule, d.Reason)
	}
	return nil
}

// readers lists the members other than this account whom g's policy lets
// read (can_read), evaluated as the nodes do at admission: only they get
// the sender key and a copy of each message.
func (c *Client) readers(ctx context.Context, g *tokenimv1.GroupRecord, now time.Time) ([]string, error) {
	p, err := c.groupPolicy(ctx, g)
	if err != nil {
		return nil, err
	}
	me := c.Handle()
	v := ledger.GroupVars(g, me, now)
	v.Action = "read"
	var out []string
	for _, m := range g.Members {
		if m.Handle == me {
			continue
		}
		v.Target, v.TargetRole = m.Handle, m.Role
		d, err := p.Decide(v)
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			out = append(out, m.Handle)
		}
	}
	return out, nil
}

// groupEncrypt numbers content in the group and encrypts it with this
// account's sender key; it returns the ciphertext and the content bytes.
func (c *Client) groupEncrypt(ctx context.Context, g *tokenimv1.GroupRecord, content *tokenimv1.Content, readers []string) (ct, raw []byte, err error) {
	err = c.store.Update(func(tx *signalstore.Tx) error { // the number, its readers and the sender key's step, one commit
		if err := stampTx(tx, "group/"+g.Name, content); err != nil {
			return err
		}
		if err := rememberReadersTx(tx, g.Name, readers); err != nil {
			return err
		}
		var err error
		if raw, err = codec.Marshal(content); err != nil {
			return err
		}
		st := tx.Signal()
		b := groups.NewGroupSessionBuilder(st, st.Serializer())
		m, err := groups.NewGroupCipher(b, senderKeyName(g.Name, g.Epoch, c.Handle()), st).Encrypt(ctx, pad(raw))
		if err != nil {
			return fmt.Errorf("group encrypt: %w", err)
		}
		ct = m.SignedSerialize()
		return nil
	})
	return ct, raw, err
}

// fanOut makes reqs in order; when one fails it returns those not made yet
// (the failed one first).
func (c *Client) fanOut(ctx context.Context, reqs []*tokenimv1.SendRequest) ([]*tokenimv1.SendRequest, error) {
	for i, req := range reqs {
		if _, err := call(ctx, c, "send to group", req, c.relay.Send); err != nil {
			return reqs[i:], deniedErr(err)
		}
	}
	return nil, nil
}

// distributeSenderKey sends this account's sender key for the group's
// epoch, over 1:1 sessions, to each member that has not had it.
func (c *Client) distributeSenderKey(ctx context.Context, g *tokenimv1.GroupRecord, to []string) error {
	c.mu.Lock()
	b := groups.NewGroupSessionBuilder(c.store, c.store.Serializer())
	skdm, err := b.Create(ctx, senderKeyName(g.Name, g.Epoch, c.Handle()))
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sender key: %w", err)
	}
	var need []string
	for _, m := range to {
		if _, done, err := c.store.Get(bucketSKSent, skSentKey(g.Name, g.Epoch, m)); err != nil {
			return err
		} else if !done {
			need = append(need, m)
		}
	}
	if len(need) == 0 {
		return nil
	}
	// A member who did not read this account's last post starts reading
	// at the next one: its number tells it that those below are not
	// missing (they were posted while it was not a reader).
	last, next, known, err := c.lastReaders(g.Name)
	if err != nil {
		return err
	}
	bodyFor := func(m string) *tokenimv1.SenderKeyDistribution {
		body := &tokenimv1.SenderKeyDistribution{Group: g.Name, Epoch: g.Epoch, Skdm: skdm.Serialize()}
		if _, ok := slices.BinarySearch(last, m); known && !ok {
			body.Since = next // (unknown: posts from before this record was kept; say nothing)
		}
		return body
	}
	// Several at a time: each is a new 1:1 session for a first post (the
	// member's proven keys, its prekey bundle, X3DH), mostly waiting on the
	// node; the Signal state changes are serialized inside.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, senderKeyParallel)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, m := range need {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.sendSenderKey(ctx, m, bodyFor(m)); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}

// senderKeyParallel is how many members get a sender key at once.
const senderKeyParallel = 8

func skSentKey(group string, epoch uint64, member string) string {
	return fmt.Sprintf("%s#%d/%s", group, epoch, member)
}

// sendSenderKey hands body to member over the 1:1 session and remembers
// the exact key given (a re-request gets the same one: its chain starts
// where the member's copy of the group's messages starts).
func (c *Client) sendSenderKey(ctx context.Context, member string, body *tokenimv1.SenderKeyDistribution) error {
	content := &tokenimv1.Content{Group: body.Group, Body: &tokenimv1.Content_SenderKey{SenderKey: body}}
	if _, err := c.sendContent(ctx, member, content, ""); err != nil {
		return fmt.Errorf("hand the sender key to @%s: %w", member, err)
	}
	k := skSentKey(body.Group, body.Epoch, member)
	return c.store.Update(func(tx *signalstore.Tx) error {
		var err error // a re-request gets the same since again
		if body.Since > 0 {
			err = tx.Put(bucketMeta, metaSKSince+k, binary.BigEndian.AppendUint64(nil, body.Since))
		} else {
			err = tx.Delete(bucketMeta, metaSKSince+k)
		}
		if err != nil {
			return err
		}
		return tx.Put(bucketSKSent, k, body.Skdm)
	})
}

// Who read this account's last post to a group (sorted handles, JSON),
// and the number a member handed a sender key was told it starts at.
const (
	metaReaders = "readers/"
	metaSKSince = "sk_since/"
)

// lastReaders returns the readers of this account's last post to group
// (known: recorded; a post before this client kept the record, or none,
// leaves it unknown) and the number its next post gets.
func (c *Client) lastReaders(group string) (last []string, next uint64, known bool, err error) {
	if b, ok, err := c.store.Get(bucketMeta, "out_counter/group/"+group); err != nil {
		return nil, 0, false, err
	} else if ok && len(b) == 8 {
		next = binary.BigEndian.Uint64(b)
	}
	b, ok, err := c.store.Get(bucketMeta, metaReaders+group)
	if err == nil && ok {
		err = json.Unmarshal(b, &last)
	}
	return last, next + 1, ok || next == 0, err
}

// rememberReadersTx records, in the transaction that numbers a post, its
// readers, if they are not those of the one before.
func rememberReadersTx(tx *signalstore.Tx, group string, to []string) error {
	sorted := slices.Sorted(slices.Values(to))
	var last []string
	if b, ok, err := tx.Get(bucketMeta, metaReaders+group); err != nil {
		return err
	} else if ok {
		if err := json.Unmarshal(b, &last); err != nil {
			return err
		}
	}
	if last != nil && slices.Equal(last, sorted) {
		return nil
	}
	b, err := json.Marshal(sorted)
	if err != nil {
		return err
	}
	return tx.Put(bucketMeta, metaReaders+group, b)
}

// requestSenderKey asks from, once per (group, epoch), for its sender key.
func (c *Client) requestSenderKey(ctx context.Context, env *tokenimv1.Envelope) error {
	key := "skreq/" + skSentKey(env.Group, env.Epoch, env.From)
	if _, done, err := c.store.Get(bucketMeta, key); err != nil || done {
		return err
	}
	req := &tokenimv1.SenderKeyRequest{Group: env.Group, Epoch: env.Epoch}
	content := &tokenimv1.Content{Group: env.Group, Body: &tokenimv1.Content_SenderKeyRequest{SenderKeyRequest: req}}
	if _, err := c.sendContent(ctx, env.From, content, ""); err != nil {
		return err
	}
	return c.store.Put(bucketMeta, key, []byte{1})
}

// answerSenderKeyRequest re-sends from the sender key it was given for the
// group's current epoch (or a first one), if the chain lists from.
func (c *Client) answerSenderKeyRequest(ctx context.Context, from string, req *tokenimv1.SenderKeyRequest) error {
	g, err := c.Group(ctx, req.Group)
	if err != nil {
		return err
	}
	if ledger.Role(g, from) == "" || ledger.Role(g, c.Handle()) == "" || g.Epoch != req.Epoch {
		return nil // not a member (any more), or an old epoch: nothing to give
	}
	to, err := c.readers(ctx, g, time.Now())
	if err != nil {
		return err
	}
	if !slices.Contains(to, from) {
		return nil // the policy does not let from read the group
	}
	skdm, ok, err := c.store.Get(bucketSKSent, skSentKey(g.Name, g.Epoch, from))
	if err != nil {
		return err
	}
	if !ok || len(skdm) <= 1 {
		c.store.Delete(bucketSKSent, skSentKey(g.Name, g.Epoch, from))
		return c.distributeSenderKey(ctx, g, to)
	}
	body := &tokenimv1.SenderKeyDistribution{Group: g.Name, Epoch: g.Epoch, Skdm: skdm}
	if b, ok, err := c.store.Get(bucketMeta, metaSKSince+skSentKey(g.Name, g.Epoch, from)); err != nil {
		return err
	} else if ok && len(b) == 8 {
		body.Since = binary.BigEndian.Uint64(b)
	}
	return c.sendSenderKey(ctx, from, body)
}

const bucketSKSent = "sender_key_sent"

// acceptSenderKey stores a member's sender key received over a 1:1
// session, if the chain says that member is in the group.
func (c *Client) acceptSenderKey(ctx context.Context, from string, skd *tokenimv1.SenderKeyDistribution) error {
	g, err := c.Group(ctx, skd.Group)
	if err != nil {
		return err
	}
	if skd.Epoch < g.Epoch {
		// A key of an epoch the group has closed since (a removal or leave
		// rotated it). Its sender must have been a member of that epoch,
		// which the chain proves: the state before the block that closed it
		// holds its final member list. This account need not be a member
		// any more: a member removed while offline still reads what was sent
		// to it while it was one — the nodes delivered those posts only to
		// readers — and nothing later, which is under keys of later epochs.
		// The sender need not be one any more either: a member who left
		// still has its earlier posts read by those who sync later.
		eg, err := c.closedEpoch(ctx, g, skd.Epoch)
		if err != nil {
			return err
		}
		if ledger.Role(eg, from) == "" {
			return fmt.Errorf("%w: sender key from @%s for %s epoch %d, which it was not a member of", ErrNotMember, from, skd.Group, skd.Epoch)
		}
	} else if ledger.Role(g, from) == "" || ledger.Role(g, c.Handle()) == "" {
		return fmt.Errorf("%w: sender key from @%s for %s", ErrNotMember, from, skd.Group)
	}
	msg, err := protocol.NewSenderKeyDistributionMessageFromBytes(skd.Skdm, c.store.Serializer().SenderKeyDistributionMessage)
	if err != nil {
		return ErrDecrypt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := groups.NewGroupSessionBuilder(c.store, c.store.Serializer())
	return b.Process(ctx, senderKeyName(skd.Group, skd.Epoch, from), msg)
}

// ClosedEpoch is an epoch a removal or leave closed: its last member list
// (who could read what was sent in it), proven at the height before the
// block that closed it.
type ClosedEpoch struct {
	Epoch    uint64                   `json:"epoch"`
	ClosedAt int64                    `json:"closed_at"`
	Members  []*tokenimv1.GroupMember `json:"members"`
	Proven   *Proven                  `json:"proven"`
}

// ClosedEpochs proves the last member list of each closed epoch of g.
func (c *Client) ClosedEpochs(ctx context.Context, g *tokenimv1.GroupRecord) ([]ClosedEpoch, error) {
	var out []ClosedEpoch
	for e := range g.Epoch {
		h, ok := ledger.EpochHeight(g, e)
		if !ok {
			return nil, fmt.Errorf("group %s does not record when its epoch %d closed (it is older than that record)", g.Name, e)
		}
		eg, pr, err := c.ProveGroup(ctx, g.Name, h)
		if err != nil {
			return nil, fmt.Errorf("epoch %d: %w", e, err)
		}
		out = append(out, ClosedEpoch{Epoch: e, ClosedAt: g.ClosedAt[e], Members: eg.Members, Proven: pr})
	}
	return out, nil
}

// closedEpoch returns the final record of a closed epoch of g, proven
// against the chain at the height before the block that closed it (and
// kept: it never changes). A group that did not record when its epochs
// closed gives its current record (then only current members' keys of
// closed epochs are accepted).
func (c *Client) closedEpoch(ctx context.Context, g *tokenimv1.GroupRecord, epoch uint64) (*tokenimv1.GroupRecord, error) {
	at, ok := ledger.EpochHeight(g, epoch)
	if !ok {
		return g, nil
	}
	key := fmt.Sprintf("%s/%d", g.Name, epoch)
	c.epochsMu.Lock()
	eg := c.epochs[key]
	c.epochsMu.Unlock()
	if eg != nil {
		return eg, nil
	}
	eg, _, err := c.ProveGroup(ctx, g.Name, at)
	if err != nil {
		return nil, fmt.Errorf("members of %s epoch %d: %w", g.Name, epoch, err)
	}
	if eg.Epoch != epoch {
		return nil, fmt.Errorf("%w: group %s at block %d is in epoch %d, not %d", ErrUnproven, g.Name, at, eg.Epoch, epoch)
	}
	c.epochsMu.Lock()
	if c.epochs == nil {
		c.epochs = map[string]*tokenimv1.GroupRecord{}
	}
	c.epochs[key] = eg
	c.epochsMu.Unlock()
	return eg, nil
}

// groupDecrypt opens a GROUP envelope with the sender's key for its epoch.
func (c *Client) groupDecrypt(ctx context.Context, env *tokenimv1.Envelope) (*tokenimv1.Content, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groupDecryptWith(ctx, c.store, env)
}

// groupDecryptWith decrypts through st (the store, or one bound to a
// transaction), with c.mu held.
func (c *Client) groupDecryptWith(ctx context.Context, st *signalstore.Store, env *tokenimv1.Envelope) (*tokenimv1.Content, error) {
	if len(env.Ciphertext) == 0 {
		return nil, ErrDecrypt
	}
	msg, err := protocol.NewSenderKeyMessageFromBytes(env.Ciphertext, st.Serializer().SenderKeyMessage)
	if err != nil {
		return nil, ErrDecrypt
	}
	b := groups.NewGroupSessionBuilder(st, st.Serializer())
	pt, err := groups.NewGroupCipher(b, senderKeyName(env.Group, env.Epoch, env.From), st).Decrypt(ctx, msg)
	if errors.Is(err, signalerror.ErrNoSenderKeyForUser) {
		return nil, errNoSenderKey
	}
	if err != nil {
		return nil, ErrDecrypt
	}
	raw, err := unpad(pt)
	if err != nil {
		return nil, ErrDecrypt
	}
	var content tokenimv1.Content
	if err := codec.Unmarshal(raw, &content, MaxTextBytes+1024); err != nil {
		return nil, ErrDecrypt
	}
	wantID := content.MessageId // a post, stored once for every reader
	if env.To != "" {
		wantID = groupEnvelopeID(content.MessageId, c.Handle()) // a member's copy (before group mailboxes)
	}
	if content.Group != env.Group || string(wantID) != string(env.Id) {
		return nil, ErrDecrypt
	}
	if err := checkCommitment(env, raw, &content); err != nil {
		return nil, err
	}
	return &content, nil
}

// Groups lists the groups this account belongs to, as the chain proves it
// (a node can neither hide one nor add one).
func (c *Client) Groups(ctx context.Context) ([]string, error) {
	res, floor, err := c.stateProof(ctx, "groups/"+c.Handle(), 0)
	if err != nil {
		return nil, err
	}
	value, _, err := c.checkStateProof(ctx, "the groups of @"+c.Handle(), ledger.AccountGroupsStateKey(c.Handle()), 0, res, floor)
	if err != nil || value == nil { // none yet: proven absent
		return nil, err
	}
	gs, err := ledger.DecodeAccountGroupsValue(value)
	if err != nil {
		return nil, fmt.Errorf("%w: the groups of @%s do not decode", ErrUnproven, c.Handle())
	}
	return gs, nil
}
