package relay

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/msglog"
	"google.golang.org/protobuf/proto"
)

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// Request states: the committer takes a pending request; a caller whose
// context ends cancels it, unless it was taken.
const (
	statePending int32 = iota
	stateTaken
	stateCancelled
)

// request is one queued Append or Ack for the committer.
type request struct {
	state    atomic.Int32
	envs     []encoded   // Append (or LogOnly)
	logOnly  bool        // leaves only: the envelopes are stored elsewhere
	ack      *ackOp      // Ack
	forget   *forgetOp   // Forget
	groupAck *groupAckOp // AckGroup
	prune    *pruneOp    // Prune
	pruned   [][]byte    // the ids Prune deleted
	dup      []bool
	size     int        // encoded bytes, for batch caps
	done     chan error // capacity 1; answered once
}

// encoded is a validated envelope and its deterministic encoding.
type encoded struct {
	id          [IDSize]byte
	to          string
	value       []byte            // full encoding, or a stub (body.go)
	hash        [sha256.Size]byte // of the ciphertext
	body        []byte            // a stub's ciphertext, stored once
	readers     []byte            // a group post's reader list (group.go)
	readersHash [sha256.Size]byte
	readerSet   *readerSet
	leaf        []byte // the message log's leaf data
	expiresMs   int64  // 0: kept until acknowledged
}

type ackOp struct {
	recipient string
	upTo      uint64
}

func (r *request) weight() int {
	if r.ack != nil || r.forget != nil || r.groupAck != nil || r.prune != nil {
		return 1
	}
	return len(r.envs)
}

// Append validates envs and stores them durably: it returns only after a
// batch containing them was committed with pebble.Sync. dup[i] reports that
// envs[i] was not stored because its id was already admitted (still stored,
// or within the dedup window) or appears earlier in the call or the queue.
//
// If an envelope is invalid, Append returns an *EnvelopeError (wrapping
// ErrInvalidEnvelope) and stores nothing. If ctx ends before the committer
// took the call, nothing is stored and ctx's error is returned; once taken,
// Append waits for the commit's outcome.
func (s *Store) Append(ctx context.Context, envs []*tokenimv1.Envelope) (dup []bool, err error) {
	if len(envs) > MaxAppendEnvelopes {
		return nil, fmt.Errorf("%w: %d (cap %d)", ErrTooManyEnvelopes, len(envs), MaxAppendEnvelopes)
	}
	req := &request{dup: make([]bool, len(envs)), done: make(chan error, 1)}
	req.envs = make([]encoded, len(envs))
	for i, e := range envs {
		if err := validate(i, e); err != nil {
			return nil, err
		}
	}
	if err := s.encode(envs, req.envs); err != nil {
		return nil, err
	}
	for _, e := range req.envs {
		req.size += len(e.value) + len(e.body) + len(e.readers)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("relay: append: %w", err)
	}
	if err := s.enqueue(req); err != nil {
		return nil, err
	}
	if len(envs) == 0 {
		return req.dup, nil // nothing to store; enqueue checked for ErrClosed
	}
	select {
	case err = <-req.done:
	case <-ctx.Done():
		if req.state.CompareAndSwap(statePending, stateCancelled) {
			return nil, fmt.Errorf("relay: append: %w", ctx.Err())
		}
		err = <-req.done
	}
	if err != nil {
		return nil, err
	}
	return req.dup, nil
}

// validate checks envelope i of an Append call.
func validate(i int, e *tokenimv1.Envelope) error {
	bad := func(field, format string, args ...any) error {
		return &EnvelopeError{Index: i, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case e == nil:
		return bad("envelope", "nil")
	case len(e.Id) != IDSize:
		return bad("id", "%d bytes, want %d", len(e.Id), IDSize)
	case e.To == "" && !IsGroupPost(e):
		return bad("to", "empty")
	case IsGroupPost(e) && len(GroupMailbox(e.Group)) > MaxName:
		return bad("group", "%d bytes (cap %d)", len(e.Group), MaxName-len(GroupMailboxPrefix))
	case len(e.To) > MaxName:
		return bad("to", "%d bytes (cap %d)", len(e.To), MaxName)
	case len(e.Ciphertext) == 0:
		return bad("ciphertext", "empty")
	case len(e.Ciphertext) > MaxCiphertext:
		return bad("ciphertext", "%d bytes (cap %d)", len(e.Ciphertext), MaxCiphertext)
	case len(e.Commitment) != 0 && len(e.Commitment) != CommitmentSize:
		return bad("commitment", "%d bytes, want %d or none", len(e.Commitment), CommitmentSize)
	}
	return nil
}

// LogOnly appends the leaves of envs to the message log without storing
// the envelopes: an entry node that admitted envelopes for mailboxes it is
// not a replica of still logs them. Envelopes already in the log are
// skipped. It returns once the leaves are durable.
func (s *Store) LogOnly(ctx context.Context, envs []*tokenimv1.Envelope) error {
	req := &request{logOnly: true, dup: make([]bool, len(envs)), done: make(chan error, 1)}
	req.envs = make([]encoded, len(envs))
	for i, e := range envs {
		if err := validate(i, e); err != nil {
			return err
		}
		req.envs[i] = encoded{id: [IDSize]byte(e.Id), leaf: msglog.LeafData(e.Id, e.Ciphertext, e.Commitment)}
	}
	if len(envs) == 0 {
		return nil
	}
	if err := s.enqueue(req); err != nil {
		return err
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		if req.state.CompareAndSwap(statePending, stateCancelled) {
			return fmt.Errorf("relay: log: %w", ctx.Err())
		}
		return <-req.done
	}
}

// Ack deletes recipient's envelopes with cursor <= upTo, durably (Sync).
// Their ids stay in the dedup index until the window ends. Acking cursors
// that do not exist (any more) is not an error.
func (s *Store) Ack(recipient string, upTo uint64) error {
	if err := checkName(recipient); err != nil {
		return err
	}
	if IsGroupMailbox(recipient) {
		return fmt.Errorf("%w: a group mailbox is acknowledged per reader (AckGroup)", ErrInvalidEnvelope)
	}
	req := &request{ack: &ackOp{recipient: recipient, upTo: upTo}, done: make(chan error, 1)}
	if err := s.enqueue(req); err != nil {
		return err
	}
	if upTo == 0 {
		return nil
	}
	return <-req.done
}

// enqueue appends req to the committer's queue (unless it has nothing to
// do) and wakes the committer.
func (s *Store) enqueue(req *request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if req.weight() == 0 || (req.ack != nil && req.ack.upTo == 0) {
		return nil
	}
	s.queue = append(s.queue, req)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}
