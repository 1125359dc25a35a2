package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/msglog"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Shared bodies. A group post is one ciphertext stored as a copy per
// member: 1,000 members, 1,000 copies of the same bytes. Within one Append
// call, a ciphertext of at least SharedMinSize bytes that more than one
// envelope carries is stored once, under its SHA-256, with a count of the
// mail entries that refer to it; each of those entries stores a stub:
//
//	0x00 | sha256(ciphertext) | the envelope's encoding without its ciphertext
//
// A full envelope's encoding never starts with 0x00 (protobuf has no field
// number 0), so both kinds of value live under 'm' and stores written
// before shared bodies existed read as they did. Deleting a stub (Ack,
// Forget, Expire) drops a reference; the body goes with its last one, in
// the same batch.

// SharedMinSize is the smallest ciphertext stored once for several
// envelopes; below it the two extra keys cost more than the copies.
const SharedMinSize = 256

const (
	stubMark        byte = 0x00
	idField              = 1 // Envelope.id
	ciphertextField      = 5 // Envelope.ciphertext
	stubHeader           = 1 + sha256.Size
	// refCacheCap bounds the committer's cache of reference counts.
	refCacheCap = 1 << 16
)

func bodyKey(h [sha256.Size]byte) []byte { return append([]byte{tagBody}, h[:]...) }
func refKey(h [sha256.Size]byte) []byte  { return append([]byte{tagBodyRef}, h[:]...) }

func isStub(v []byte) bool { return len(v) > 0 && v[0] == stubMark }

// stubHash is the body hash of a stub (the caller checked isStub).
func stubHash(v []byte) ([sha256.Size]byte, error) {
	if len(v) < stubHeader {
		return [sha256.Size]byte{}, fmt.Errorf("%w: stub of %d bytes", ErrCorrupt, len(v))
	}
	return [sha256.Size]byte(v[1:stubHeader]), nil
}

// decodeValue decodes a stored mail value; body returns a shared body's
// ciphertext (only called for a stub).
func decodeValue(v []byte, body func([sha256.Size]byte) ([]byte, error)) (*tokenimv1.Envelope, error) {
	env := new(tokenimv1.Envelope)
	if isPost(v) {
		if len(v) < stubHeader {
			return nil, fmt.Errorf("%w: post of %d bytes", ErrCorrupt, len(v))
		}
		return env, proto.Unmarshal(v[stubHeader:], env)
	}
	if !isStub(v) {
		return env, proto.Unmarshal(v, env)
	}
	h, err := stubHash(v)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(v[stubHeader:], env); err != nil {
		return nil, err
	}
	if env.Ciphertext, err = body(h); err != nil {
		return nil, err
	}
	return env, nil
}

// bodyOf reads a shared body from Pebble (the caller holds dbMu shared).
func (s *Store) bodyOf(h [sha256.Size]byte) ([]byte, error) {
	v, ok, err := s.get(bodyKey(h))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: shared body %x missing", ErrCorrupt, h[:8])
	}
	if sha256.Sum256(v) != h {
		return nil, fmt.Errorf("%w: shared body %x does not match its hash", ErrCorrupt, h[:8])
	}
	return v, nil
}

// refState is a body's reference count and size.
type refState struct {
	n    uint64
	size uint64
}

// refChange is what one batch does to a body's references.
type refChange struct {
	delta int64
	body  []byte // from an envelope added in the batch, if any
}

// ref counts one more entry referring to body h.
func (b *builder) ref(h [sha256.Size]byte, body []byte) {
	rc := b.refChange(h)
	rc.delta++
	if rc.body == nil {
		rc.body = body
	}
}

// refChange returns this batch's change to body h's references.
func (b *builder) refChange(h [sha256.Size]byte) *refChange {
	rc := b.refs[h]
	if rc == nil {
		rc = &refChange{}
		b.refs[h] = rc
	}
	return rc
}

// unref drops the reference of a deleted mail value, if it is a stub.
func (b *builder) unref(v []byte) error {
	if !isStub(v) && !isPost(v) {
		return nil
	}
	h, err := stubHash(v)
	if err != nil {
		return err
	}
	b.refChange(h).delta--
	return nil
}

// applyRefs writes the batch's reference changes: a body's first
// reference writes it, its last deletes it.
func (b *builder) applyRefs() error {
	for h, rc := range b.refs {
		if rc.delta == 0 {
			continue
		}
		old, err := b.s.refCount(h)
		if err != nil {
			return err
		}
		n := int64(old.n) + rc.delta
		st := refState{n: uint64(max(n, 0)), size: old.size}
		switch {
		case n < 0:
			return fmt.Errorf("%w: shared body %x: %d references dropped, %d held", ErrCorrupt, h[:8], -rc.delta, old.n)
		case n == 0:
			if err := b.batch.Delete(bodyKey(h), nil); err != nil {
				return err
			}
			if err := b.batch.Delete(refKey(h), nil); err != nil {
				return err
			}
			b.dBytes -= int64(old.size)
		default:
			if old.n == 0 {
				if rc.body == nil {
					return fmt.Errorf("%w: shared body %x referred to but not stored", ErrCorrupt, h[:8])
				}
				st.size = uint64(len(rc.body))
				if err := b.batch.Set(bodyKey(h), rc.body, nil); err != nil {
					return err
				}
				b.dBytes += int64(st.size)
			}
			if err := b.batch.Set(refKey(h), putUint64s(st.n, st.size), nil); err != nil {
				return err
			}
		}
		b.newRefs[h] = st
	}
	return nil
}

// refCount returns a body's committed reference count (committer only).
func (s *Store) refCount(h [sha256.Size]byte) (refState, error) {
	if st, ok := s.refCache[h]; ok {
		return st, nil
	}
	v, ok, err := s.get(refKey(h))
	if err != nil || !ok {
		return refState{}, err
	}
	if len(v) != 16 {
		return refState{}, fmt.Errorf("%w: reference count of %x", ErrCorrupt, h[:8])
	}
	st := refState{n: binary.BigEndian.Uint64(v[:8]), size: binary.BigEndian.Uint64(v[8:])}
	s.cacheRef(h, st)
	return st, nil
}

// cacheRef records a committed count; the cache starts over when full.
func (s *Store) cacheRef(h [sha256.Size]byte, st refState) {
	if st.n == 0 {
		delete(s.refCache, h)
		return
	}
	if len(s.refCache) >= refCacheCap {
		clear(s.refCache)
	}
	s.refCache[h] = st
}

// encode fills enc with envs' stored encodings: a ciphertext (of at least
// SharedMinSize bytes) that several envelopes of the call carry is stored
// once and those envelopes as stubs; the others in full.
func (s *Store) encode(envs []*tokenimv1.Envelope, enc []encoded) error {
	count := map[[sha256.Size]byte]int{}
	for i, e := range envs {
		if IsGroupPost(e) {
			enc[i].hash = sha256.Sum256(e.Ciphertext)
			enc[i].id, enc[i].expiresMs = [IDSize]byte(e.Id), e.ExpiresAtMs
			enc[i].leaf = msglog.LeafDataFromHash(e.Id, enc[i].hash[:], e.Commitment)
			if err := s.encodePost(e, &enc[i]); err != nil {
				return &EnvelopeError{Index: i, Field: "envelope", Reason: err.Error()}
			}
			continue
		}
		if i > 0 && sameSlice(e.Ciphertext, envs[i-1].Ciphertext) {
			enc[i].hash = enc[i-1].hash // copies of one post share the slice
		} else {
			enc[i].hash = sha256.Sum256(e.Ciphertext)
		}
		if len(e.Ciphertext) >= SharedMinSize {
			count[enc[i].hash]++
		}
		enc[i].id, enc[i].to, enc[i].expiresMs = [IDSize]byte(e.Id), e.To, e.ExpiresAtMs
		enc[i].leaf = msglog.LeafDataFromHash(e.Id, enc[i].hash[:], e.Commitment)
	}
	bodies := map[[sha256.Size]byte][]byte{} // one copy of each body, not the caller's
	for i, e := range envs {
		if IsGroupPost(e) {
			continue
		}
		var err error
		if len(e.Ciphertext) < SharedMinSize || count[enc[i].hash] < 2 {
			enc[i].value, err = marshalOpts.Marshal(e)
		} else {
			enc[i].value, err = stubOf(e, enc[i].hash)
			body, ok := bodies[enc[i].hash]
			if !ok {
				body = bytes.Clone(e.Ciphertext)
				bodies[enc[i].hash] = body
			}
			enc[i].body = body
		}
		if err != nil {
			return &EnvelopeError{Index: i, Field: "envelope", Reason: err.Error()}
		}
	}
	return nil
}

// stubOf encodes e as a stub: its fields but the ciphertext, behind the
// ciphertext's hash. e is not modified (it may be read concurrently).
func stubOf(e *tokenimv1.Envelope, h [sha256.Size]byte) ([]byte, error) {
	c := bareCopy(e)
	out := make([]byte, 0, stubHeader+marshalOpts.Size(c))
	out = append(out, stubMark)
	out = append(out, h[:]...)
	return marshalOpts.MarshalAppend(out, c)
}

// bareCopy is e without its ciphertext and readers (stored beside it). The
// fields are copied by name (a post's copies made 999 stubs; reflection
// cost ~1 µs each): TestStubKeepsEveryField and
// TestGroupPostKeepsEveryField fail if Envelope gains a field this does
// not copy.
func bareCopy(e *tokenimv1.Envelope) *tokenimv1.Envelope {
	return &tokenimv1.Envelope{Id: e.Id, To: e.To, From: e.From, Type: e.Type, ReceivedAtMs: e.ReceivedAtMs,
		Group: e.Group, Epoch: e.Epoch, ExpiresAtMs: e.ExpiresAtMs, Commitment: e.Commitment}
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// valueID returns a copy of the envelope id in a stored mail value (full
// or stub) without decoding the rest.
func valueID(v []byte) ([]byte, error) {
	if isStub(v) || isPost(v) {
		if len(v) < stubHeader {
			return nil, fmt.Errorf("%w: stub of %d bytes", ErrCorrupt, len(v))
		}
		v = v[stubHeader:]
	}
	for b := v; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		if num == idField && typ == protowire.BytesType {
			id, m := protowire.ConsumeBytes(b[n:])
			if m < 0 || len(id) != IDSize {
				break
			}
			return bytes.Clone(id), nil
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			break
		}
		b = b[n+m:]
	}
	return nil, fmt.Errorf("%w: a stored envelope without a valid id", ErrCorrupt)
}
