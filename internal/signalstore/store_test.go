package signalstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
	grouprecord "go.mau.fi/libsignal/groups/state/record"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/keyhelper"
)

func TestOpenChecks(t *testing.T) {
	p := newPeer(t, "alice", 1)
	if err := p.st.Close(); err != nil {
		t.Fatal(err)
	}
	wrong := p.key
	wrong[0] ^= 1
	if _, err := Open(p.path, wrong, p.ikp, p.regID); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with wrong key: got %v, want ErrWrongKey", err)
	}
	other, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p.path, p.key, other, p.regID); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("Open with other identity: got %v, want ErrIdentityMismatch", err)
	}
	if _, err := Open(p.path, p.key, nil, p.regID); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open with nil identity: got %v, want ErrInvalid", err)
	}
	p.open(t)
	if _, err := Open(p.path, p.key, p.ikp, p.regID); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	if p.st.GetLocalRegistrationID() != p.regID || p.st.GetIdentityKeyPair() != p.ikp {
		t.Fatal("local identity or registration id not returned")
	}
}

func TestKV(t *testing.T) {
	st := newPeer(t, "alice", 1).st
	for _, k := range []string{"b", "c", "a"} {
		if err := st.Put("history", k, []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok, err := st.Get("history", "b"); err != nil || !ok || string(v) != "vb" {
		t.Fatalf("Get = %q, %v, %v", v, ok, err)
	}
	if _, ok, err := st.Get("history", "zz"); err != nil || ok {
		t.Fatalf("Get missing key: ok=%v err=%v", ok, err)
	}
	if _, ok, err := st.Get("nobucket", "a"); err != nil || ok {
		t.Fatalf("Get missing bucket: ok=%v err=%v", ok, err)
	}
	if err := st.Delete("history", "c"); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, st, "history"); got != "a=va b=vb " {
		t.Fatalf("ForEach = %q", got)
	}
	boom := errors.New("boom")
	err := st.Update(func(tx *Tx) error {
		if err := tx.Put("history", "d", []byte("vd")); err != nil {
			return err
		}
		if err := tx.Delete("history", "a"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || dump(t, st, "history") != "a=va b=vb " {
		t.Fatalf("failed Update was not rolled back: %v", err)
	}
	if err := st.Update(func(tx *Tx) error {
		if err := tx.Put("settings", "x", []byte("1")); err != nil {
			return err
		}
		return tx.Delete("history", "a")
	}); err != nil || dump(t, st, "history") != "b=vb " || dump(t, st, "settings") != "x=1 " {
		t.Fatalf("Update not applied: %v", err)
	}
	for _, bad := range [][2]string{{"", "k"}, {"b", ""}, {string(make([]byte, MaxBucketLen+1)), "k"}} {
		if err := st.Put(bad[0], bad[1], nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Put(%q, %q): got %v, want ErrInvalid", bad[0], bad[1], err)
		}
	}
}

func dump(t *testing.T, st *Store, bucket string) string {
	t.Helper()
	var out string
	if err := st.ForEach(bucket, func(k string, v []byte) error {
		out += fmt.Sprintf("%s=%s ", k, v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// rawUpdate edits the bolt file under the store, as an attacker with the
// file would.
func rawUpdate(t *testing.T, st *Store, bucket string, fn func(b *bolt.Bucket) error) {
	t.Helper()
	if err := st.db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte(bucket))) }); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedValueIsCorrupt(t *testing.T) {
	st := newPeer(t, "alice", 1).st
	if err := st.Put("history", "k1", []byte("secret one")); err != nil {
		t.Fatal(err)
	}
	if err := st.Put("history", "k2", []byte("secret two")); err != nil {
		t.Fatal(err)
	}
	var orig []byte
	rawUpdate(t, st, kvPrefix+"history", func(b *bolt.Bucket) error {
		orig = bytes.Clone(b.Get([]byte("k1")))
		return nil
	})
	for i := range orig {
		rawUpdate(t, st, kvPrefix+"history", func(b *bolt.Bucket) error {
			v := bytes.Clone(orig)
			v[i] ^= 0x01
			return b.Put([]byte("k1"), v)
		})
		if _, _, err := st.Get("history", "k1"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip byte %d: got %v, want ErrCorrupt", i, err)
		}
	}
	for _, v := range [][]byte{nil, orig[:len(orig)-1], append(bytes.Clone(orig), 0)} {
		rawUpdate(t, st, kvPrefix+"history", func(b *bolt.Bucket) error { return b.Put([]byte("k1"), v) })
		if _, _, err := st.Get("history", "k1"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("length %d: got %v, want ErrCorrupt", len(v), err)
		}
	}
	// An authentic value moved to another key does not open either.
	rawUpdate(t, st, kvPrefix+"history", func(b *bolt.Bucket) error { return b.Put([]byte("k2"), orig) })
	if _, _, err := st.Get("history", "k2"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped value: got %v, want ErrCorrupt", err)
	}
	if err := st.ForEach("history", func(string, []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ForEach over tampered bucket: got %v, want ErrCorrupt", err)
	}
}

func TestTamperedSessionIsCorrupt(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", 1), newPeer(t, "bob", 1)
	rec, err := alice.st.LoadSession(ctx, bob.addr)
	if err != nil || !rec.IsFresh() {
		t.Fatalf("LoadSession of unknown address: %v", err)
	}
	// libsignal panics serializing a fresh record; the store refuses it.
	if err := alice.st.StoreSession(ctx, bob.addr, rec); !errors.Is(err, ErrInvalid) {
		t.Fatalf("StoreSession(fresh record): got %v, want ErrInvalid", err)
	}
	builder := session.NewBuilderFromSignal(alice.st, bob.addr, alice.st.Serializer())
	if err := builder.ProcessBundle(ctx, bob.publishBundle(t, ctx)); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, alice.st, bucketSession, func(b *bolt.Bucket) error {
		k, v := b.Cursor().First()
		v = bytes.Clone(v)
		v[len(v)-1] ^= 0x80
		return b.Put(bytes.Clone(k), v)
	})
	if _, err := alice.st.LoadSession(ctx, bob.addr); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("LoadSession tampered: got %v, want ErrCorrupt", err)
	}
}

func TestSessionsAndSenderKeys(t *testing.T) {
	ctx := context.Background()
	p, bob := newPeer(t, "alice", 1), newPeer(t, "bob", 1)
	st, ser := p.st, p.st.Serializer()
	bundle := bob.publishBundle(t, ctx)
	for _, addr := range []*protocol.SignalAddress{
		protocol.NewSignalAddress("bob-handle", 3), protocol.NewSignalAddress("bob-handle", 1),
		protocol.NewSignalAddress("bob-handle", 2), protocol.NewSignalAddress("bob-handle2", 5),
	} {
		if err := session.NewBuilderFromSignal(st, addr, ser).ProcessBundle(ctx, bundle); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := st.GetSubDeviceSessions(ctx, "bob-handle")
	if err != nil || fmt.Sprint(ids) != "[2 3]" {
		t.Fatalf("GetSubDeviceSessions = %v, %v", ids, err)
	}
	skn := protocol.NewSenderKeyName("group-handle", protocol.NewSignalAddress("carol-handle", 1))
	if rec, err := st.LoadSenderKey(ctx, skn); err != nil || rec == nil || !rec.IsEmpty() {
		t.Fatalf("LoadSenderKey missing = %v, %v; want empty record", rec, err)
	}
	if err := st.StoreSenderKey(ctx, skn, emptySenderKey(ser)); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveIdentity(ctx, protocol.NewSignalAddress("dave-handle", 1), p.ikp.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if err := st.Put("history", "k", []byte("hello-plaintext")); err != nil {
		t.Fatal(err)
	}
	p.reopen(t)
	raw, err := os.ReadFile(p.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"bob-handle", "carol-handle", "group-handle", "dave-handle", "hello-plaintext"} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Fatalf("file contains %q in the clear", leak)
		}
	}
	if err := p.st.DeleteAllSessions(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := p.st.ContainsSession(ctx, protocol.NewSignalAddress("bob-handle", 2)); err != nil || ok {
		t.Fatalf("session left after DeleteAllSessions: ok=%v err=%v", ok, err)
	}
}

func TestSignedPreKeys(t *testing.T) {
	ctx := context.Background()
	p := newPeer(t, "alice", 1)
	for _, id := range []uint32{9, 2} {
		spk, err := keyhelper.GenerateSignedPreKey(p.ikp, id, p.st.Serializer().SignedPreKeyRecord)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.st.StoreSignedPreKey(ctx, id, spk); err != nil {
			t.Fatal(err)
		}
	}
	p.reopen(t)
	all, err := p.st.LoadSignedPreKeys(ctx)
	if err != nil || len(all) != 2 || all[0].ID() != 2 || all[1].ID() != 9 {
		t.Fatalf("LoadSignedPreKeys = %d records, %v", len(all), err)
	}
	if err := p.st.RemoveSignedPreKey(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.st.ContainsSignedPreKey(ctx, 2); ok {
		t.Fatal("signed prekey 2 still stored")
	}
	if rec, err := p.st.LoadSignedPreKey(ctx, 2); rec != nil || err != nil {
		t.Fatalf("LoadSignedPreKey removed = %v, %v", rec, err)
	}
	if rec, err := p.st.LoadPreKey(ctx, 42); rec != nil || err != nil {
		t.Fatalf("LoadPreKey missing = %v, %v", rec, err)
	}
	var nilKey *identity.Key
	if err := p.st.SaveIdentity(ctx, p.addr, nilKey); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SaveIdentity(nil): got %v", err)
	}
}

func emptySenderKey(ser *serialize.Serializer) *grouprecord.SenderKey {
	return grouprecord.NewSenderKey(ser.SenderKeyRecord, ser.SenderKeyState)
}
