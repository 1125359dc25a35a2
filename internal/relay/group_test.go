package relay

import (
	"crypto/rand"
	"crypto/sha256"
	"slices"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/proto"
)

// newPost returns a group post of group for readers.
func newPost(group string, readers ...string) *tokenimv1.Envelope {
	ct := make([]byte, 600)
	rand.Read(ct)
	return &tokenimv1.Envelope{Id: newID(), From: "alice", Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP,
		Group: group, Epoch: 3, Ciphertext: ct, ReceivedAtMs: 1_700_000_000_000, Readers: readers}
}

// readAll reads member's posts of mailbox after a cursor, page by page.
func readAll(t *testing.T, s *Store, mailbox, member string, after uint64) (ids [][]byte, last uint64) {
	t.Helper()
	last = after
	for {
		ds, l, err := s.ReadGroup(mailbox, member, last, 2)
		if err != nil {
			t.Fatalf("ReadGroup(%s, %s): %v", mailbox, member, err)
		}
		for _, d := range ds {
			if d.Group != "team" || d.Envelope.Group != "team" || len(d.Envelope.Readers) != 0 {
				t.Fatalf("delivery %v: want group team and no readers", d)
			}
			ids = append(ids, d.Envelope.Id)
		}
		if l == last {
			return ids, last
		}
		last = l
	}
}

// Every field of a group post survives storage; the readers come back
// sorted, for a peer only.
func TestGroupPostKeepsEveryField(t *testing.T) {
	e := everyField(t)
	e.To = ""
	s := openStore(t, t.TempDir(), Options{})
	var enc encoded
	if err := s.encodePost(e, &enc); err != nil {
		t.Fatal(err)
	}
	got, err := decodeValue(enc.value, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(e).(*tokenimv1.Envelope)
	want.Readers = nil
	if !proto.Equal(got, want) {
		t.Fatalf("post lost a field:\n got %v\nwant %v", got, want)
	}
	rs, err := parseReaders(enc.readers)
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Sorted(slices.Values(e.Readers))
	if !slices.Equal(rs.names, sorted) || sha256.Sum256(enc.readers) != enc.readersHash {
		t.Fatalf("readers %v (want %v)", rs.names, sorted)
	}
}

func TestGroupMailbox(t *testing.T) {
	for _, live := range []bool{false, true} {
		name := "from-pebble"
		if live {
			name = "from-tail"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			mb := GroupMailbox("team")
			if live { // a member's stream is open: posts are read from the tail
				_, cancel := s.Subscribe(mb)
				defer cancel()
			}
			p1 := newPost("team", "carol", "bob")
			p2 := newPost("team", "bob") // carol may not read this one
			p3 := newPost("team", "bob", "carol", "bob")
			if dup := mustAppend(t, s, p1, p2); dup[0] || dup[1] {
				t.Fatal("a new post reported as a duplicate")
			}
			if dup := mustAppend(t, s, p3, p1); dup[0] || !dup[1] {
				t.Fatalf("dup %v: want p1 again a duplicate", dup)
			}
			if st := s.Stats(); st.Envelopes != 3 {
				t.Fatalf("%d envelopes stored, want 3 (one per post)", st.Envelopes)
			}
			bob, last := readAll(t, s, mb, "bob", 0)
			if len(bob) != 3 || last != 3 {
				t.Fatalf("bob read %d posts up to %d, want 3 up to 3", len(bob), last)
			}
			carol, _ := readAll(t, s, mb, "carol", 0)
			if len(carol) != 2 || string(carol[0]) != string(p1.Id) || string(carol[1]) != string(p3.Id) {
				t.Fatalf("carol read %d posts, want p1 and p3", len(carol))
			}
			dave, last := readAll(t, s, mb, "dave", 0)
			if len(dave) != 0 || last != 3 {
				t.Fatalf("dave (no reader) read %d posts, scanned to %d", len(dave), last)
			}
			if got, _ := readAll(t, s, mb, "bob", 2); len(got) != 1 || string(got[0]) != string(p3.Id) {
				t.Fatal("reading after cursor 2 did not give p3 alone")
			}
			// A peer's read carries the readers.
			ds, err := s.Read(mb, 0, 0)
			if err != nil || len(ds) != 3 || !slices.Equal(ds[0].Envelope.Readers, []string{"bob", "carol"}) {
				t.Fatalf("peer read: %v, %d posts, readers %v", err, len(ds), ds[0].Envelope.GetReaders())
			}
			if err := s.Ack(mb, 3); err == nil {
				t.Fatal("an Ack of a whole group mailbox was accepted")
			}

			// Nothing goes before every reader has passed it.
			if err := s.AckGroup(mb, "bob", 3); err != nil {
				t.Fatal(err)
			}
			if ids, err := s.Prune(mb, nil); err != nil || len(ids) != 0 {
				t.Fatalf("Prune with carol behind: %d, %v", len(ids), err)
			}
			if err := s.AckGroup(mb, "carol", 1); err != nil {
				t.Fatal(err)
			}
			if err := s.AckGroup(mb, "carol", 0); err != nil { // never moves back
				t.Fatal(err)
			}
			if ids, err := s.Prune(mb, nil); err != nil || len(ids) != 2 || string(ids[0]) != string(p1.Id) || string(ids[1]) != string(p2.Id) {
				t.Fatalf("Prune: %d deleted, %v; want p1 and p2 (carol is no reader of p2)", len(ids), err)
			}
			if p, err := s.Position(mb, "carol"); err != nil || p != 1 {
				t.Fatalf("carol's position %d, %v", p, err)
			}
			// carol left the group: she does not hold p3 back.
			if ids, err := s.Prune(mb, func(m string) bool { return m != "carol" }); err != nil || len(ids) != 1 {
				t.Fatalf("Prune without carol: %d, %v", len(ids), err)
			}
			if st := s.Stats(); st.Envelopes != 0 || st.Bytes != 0 {
				t.Fatalf("after pruning: %d envelopes, %d bytes (reader lists included)", st.Envelopes, st.Bytes)
			}
			if got, _ := readAll(t, s, mb, "bob", 0); len(got) != 0 {
				t.Fatalf("bob still reads %d posts", len(got))
			}
			// Cursors are not given again, positions survive a restart.
			p4 := newPost("team", "bob")
			mustAppend(t, s, p4)
			s.Close()
			s = openStore(t, dir, Options{})
			if p, err := s.Position(mb, "bob"); err != nil || p != 3 {
				t.Fatalf("bob's position after a restart: %d, %v", p, err)
			}
			ds, last, err = s.ReadGroup(mb, "bob", 3, 0)
			if err != nil || len(ds) != 1 || ds[0].Cursor != 4 || last != 4 {
				t.Fatalf("after a restart: %v, %d posts, last %d; want p4 at cursor 4", err, len(ds), last)
			}
		})
	}
}

// A post's retention deletes it, read or not.
func TestGroupPostExpires(t *testing.T) {
	clock := newFakeClock()
	s := openStore(t, t.TempDir(), Options{Now: clock.Now})
	mb := GroupMailbox("team")
	p := newPost("team", "bob")
	p.ExpiresAtMs = clock.Now().UnixMilli() + 1000
	mustAppend(t, s, p, newPost("team", "bob"))
	n, err := s.Expire(clock.Now().UnixMilli() + 1000)
	if err != nil || n != 1 {
		t.Fatalf("Expire: %d, %v", n, err)
	}
	if got, _ := readAll(t, s, mb, "bob", 0); len(got) != 1 {
		t.Fatalf("bob reads %d posts, want the one without retention", len(got))
	}
}

// A member's Receive of several mailboxes: a bad name is refused.
func TestGroupMailboxBadInput(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	p := newPost("", "bob")
	if _, err := s.Append(t.Context(), []*tokenimv1.Envelope{p}); err == nil {
		t.Fatal("a post without a group or recipient was stored")
	}
	long := newPost(string(make([]byte, MaxName)), "bob")
	if _, err := s.Append(t.Context(), []*tokenimv1.Envelope{long}); err == nil {
		t.Fatal("a post whose mailbox name is too long was stored")
	}
	if err := s.AckGroup("", "bob", 1); err == nil {
		t.Fatal("AckGroup of no mailbox accepted")
	}
}

// A post no one else may read (the sender alone in its group) is stored,
// logged, read by no one and pruned at once.
func TestGroupPostWithoutReaders(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	mb := GroupMailbox("solo")
	p := newPost("solo")
	p.Group = "solo"
	mustAppend(t, s, p)
	if ds, err := s.Read(mb, 0, 0); err != nil || len(ds) != 1 || len(ds[0].Envelope.Readers) != 0 {
		t.Fatalf("peer read: %v %v", ds, err)
	}
	if got, last := readAll(t, s, mb, "alice", 0); len(got) != 0 || last != 1 {
		t.Fatalf("the sender read its own post (%d), or the scan stopped at %d", len(got), last)
	}
	if ids, err := s.Prune(mb, nil); err != nil || len(ids) != 1 {
		t.Fatalf("Prune: %d, %v", len(ids), err)
	}
	if st := s.Stats(); st.Envelopes != 0 || st.Bytes != 0 {
		t.Fatalf("%d envelopes, %d bytes left", st.Envelopes, st.Bytes)
	}
}
