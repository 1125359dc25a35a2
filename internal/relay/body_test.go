package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkBodies checks the shared-body invariants against the database:
// every body's count equals the stubs that refer to it, no count or stub
// is without its body, and Stats().Bytes is what the values and bodies
// take. It returns how many bodies are stored.
func checkBodies(t testing.TB, s *Store) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	refs, counts, bodies := map[[32]byte]uint64{}, map[[32]byte]uint64{}, map[[32]byte]int{}
	var size int64
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		switch k[0] {
		case tagMail:
			size += int64(len(v))
			if isStub(v) {
				h, _ := stubHash(v)
				refs[h]++
			}
		case tagBody:
			h := [32]byte(k[1:])
			if sha256.Sum256(v) != h {
				t.Fatalf("body %x: wrong hash", h[:4])
			}
			bodies[h] = len(v)
			size += int64(len(v))
		case tagBodyRef:
			counts[[32]byte(k[1:])] = binary.BigEndian.Uint64(v[:8])
		}
	}
	for h, n := range refs {
		if counts[h] != n {
			t.Fatalf("body %x: %d stubs, count %d", h[:4], n, counts[h])
		}
		if _, ok := bodies[h]; !ok {
			t.Fatalf("body %x: referred to, missing", h[:4])
		}
	}
	for h := range bodies {
		if refs[h] == 0 {
			t.Fatalf("body %x kept with no reference", h[:4])
		}
	}
	if len(counts) != len(bodies) {
		t.Fatalf("%d counts, %d bodies", len(counts), len(bodies))
	}
	if got := s.Stats().Bytes; got != size {
		t.Fatalf("Stats().Bytes = %d, the database holds %d", got, size)
	}
	return len(bodies)
}

// groupPost returns one envelope per recipient, all with the same
// ciphertext of size bytes, as a group post is sent.
func groupPost(size int, to ...string) []*tokenimv1.Envelope {
	ct := newEnv("x", size).Ciphertext
	var out []*tokenimv1.Envelope
	for _, name := range to {
		e := newEnv(name, 1)
		e.Ciphertext, e.Type, e.Group = ct, tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP, "team"
		out = append(out, e)
	}
	return out
}

// A ciphertext several envelopes of one call carry is stored once; every
// reader gets the envelope as sent (from the tail and from Pebble, before
// and after a restart); the body goes with its last reference, whether
// acknowledged, forgotten or expired.
func TestSharedBodies(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	s := openStore(t, dir, Options{Now: clock.Now})
	ctx := context.Background()
	names := []string{"ann", "bob", "cat", "dan", "eve"}
	_, cancel := s.Subscribe("ann")
	post := groupPost(1024, names...)
	post[4].ExpiresAtMs = clock.Now().Add(1000).UnixMilli()
	small := groupPost(SharedMinSize-1, "ann", "bob") // too small to share
	lone := newEnv("ann", 4096)                       // nobody else carries it
	if _, err := s.Append(ctx, append(append(post, small...), lone)); err != nil {
		t.Fatal(err)
	}
	if n := checkBodies(t, s); n != 1 {
		t.Fatalf("%d bodies stored, want 1", n)
	}
	again := groupPost(1024, "fay") // another call, the same ciphertext
	again[0].Ciphertext = post[0].Ciphertext
	sameTwice := append(again, groupPost(1024, "fay")[0])
	sameTwice[1].Ciphertext = post[0].Ciphertext
	if _, err := s.Append(ctx, sameTwice); err != nil {
		t.Fatal(err)
	}
	if n := checkBodies(t, s); n != 1 {
		t.Fatalf("%d bodies after a second post of the same ciphertext", n)
	}
	want := map[string][]*tokenimv1.Envelope{}
	for _, e := range append(append(append(post, small...), lone), sameTwice...) {
		want[e.To] = append(want[e.To], e)
	}
	check := func(when string) {
		t.Helper()
		for name, envs := range want {
			ds, err := s.Read(name, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != len(envs) {
				t.Fatalf("%s: %s has %d, want %d", when, name, len(ds), len(envs))
			}
			for i, d := range ds {
				if !proto.Equal(d.Envelope, envs[i]) {
					t.Fatalf("%s: %s's envelope %d differs", when, name, i)
				}
			}
		}
	}
	check("stored")
	for name, envs := range want {
		ids, err := s.IDs(name, 2)
		if err != nil || len(ids) != min(2, len(envs)) {
			t.Fatalf("IDs(%s): %d %v", name, len(ids), err)
		}
		for i, id := range ids {
			if !bytes.Equal(id, envs[i].Id) {
				t.Fatalf("IDs(%s)[%d] = %x, want %x", name, i, id, envs[i].Id)
			}
		}
	}
	if got, ok, err := s.readTail("ann", 0, 0); !ok || err != nil || len(got) != 3 || !bytes.Equal(got[0].Envelope.Ciphertext, post[0].Ciphertext) {
		t.Fatalf("ann's tail: %d %v %v", len(got), ok, err)
	}
	if e, ok, err := s.envelopeByID(post[1].Id); !ok || err != nil || !proto.Equal(e, post[1]) {
		t.Fatalf("by id: %v %v", ok, err)
	}
	cancel()
	s.Close()
	s = openStore(t, dir, Options{Now: clock.Now})
	check("reopened")

	if err := s.Ack("ann", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget("bob", [][]byte{post[1].Id}); err != nil {
		t.Fatal(err)
	}
	delete(want, "ann")
	want["bob"] = want["bob"][1:]
	checkBodies(t, s)
	check("after ack and forget")
	clock.Advance(2000)
	if n, err := s.Expire(clock.Now().UnixMilli()); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	want["eve"] = nil
	checkBodies(t, s)
	check("after expiry")
	for _, name := range []string{"bob", "cat", "dan", "fay"} {
		if err := s.Ack(name, 10); err != nil {
			t.Fatal(err)
		}
	}
	if n := checkBodies(t, s); n != 0 || s.Stats().Envelopes != 0 || s.Stats().Bytes != 0 {
		t.Fatalf("all acknowledged: %d bodies, stats %+v", n, s.Stats())
	}
}

// A stub whose body is missing or altered is reported as corrupt, not
// delivered with another ciphertext.
func TestSharedBodyCorrupt(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	post := groupPost(512, "ann", "bob")
	mustAppend(t, s, post...)
	h := sha256.Sum256(post[0].Ciphertext)
	if err := s.db.Set(bodyKey(h), []byte("not the body"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read("bob", 0, 0); err == nil {
		t.Fatal("an altered body was delivered")
	}
	if err := s.db.Delete(bodyKey(h), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read("bob", 0, 0); err == nil {
		t.Fatal("a stub without its body was delivered")
	}
}

// The stub layout names Envelope's fields by number.
func TestStubFieldNumbers(t *testing.T) {
	fields := (&tokenimv1.Envelope{}).ProtoReflect().Descriptor().Fields()
	if fields.ByName("ciphertext").Number() != ciphertextField || fields.ByName("id").Number() != idField {
		t.Fatal("Envelope's field numbers changed: update body.go")
	}
}

// Every field of Envelope but the ciphertext survives a stub: an envelope
// with all of them set (found by reflection, so a field added later is
// covered) decodes from its stub and body equal to itself. The readers
// of a group post are the exception: a stub is a member's own copy, and
// a post keeps its readers beside it (TestGroupPostKeepsEveryField).
func TestStubKeepsEveryField(t *testing.T) {
	e := everyField(t)
	e.Readers = nil
	stub, err := stubOf(e, sha256.Sum256(e.Ciphertext))
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeValue(stub, func([sha256.Size]byte) ([]byte, error) { return e.Ciphertext, nil })
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, e) {
		t.Fatalf("stub lost a field:\n got %v\nwant %v", got, e)
	}
}

// everyField returns an Envelope with every field set (found by
// reflection, so a field added later is covered).
func everyField(t *testing.T) *tokenimv1.Envelope {
	t.Helper()
	e := &tokenimv1.Envelope{}
	m := e.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsList() && fd.Kind() == protoreflect.StringKind {
			l := m.Mutable(fd).List()
			l.Append(protoreflect.ValueOfString(fmt.Sprintf("b%d", i)))
			l.Append(protoreflect.ValueOfString(fmt.Sprintf("a%d", i)))
			continue
		}
		switch fd.Kind() {
		case protoreflect.BytesKind:
			m.Set(fd, protoreflect.ValueOfBytes([]byte{byte(i + 1), 2, 3}))
		case protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(fmt.Sprintf("field%d", i)))
		case protoreflect.EnumKind:
			m.Set(fd, protoreflect.ValueOfEnum(protoreflect.EnumNumber(i+1)))
		case protoreflect.Int64Kind:
			m.Set(fd, protoreflect.ValueOfInt64(int64(1000+i)))
		case protoreflect.Uint64Kind:
			m.Set(fd, protoreflect.ValueOfUint64(uint64(2000+i)))
		default:
			t.Fatalf("Envelope.%s is a %v: teach this test (and stubOf, encodePost) about it", fd.Name(), fd.Kind())
		}
	}
	return e
}
