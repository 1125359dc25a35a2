package signalstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"go.mau.fi/libsignal/groups"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/keyhelper"
	"go.mau.fi/libsignal/util/optional"
)

// peer is one side of a conversation with a persistent store.
type peer struct {
	addr  *protocol.SignalAddress
	ikp   *identity.KeyPair
	regID uint32
	key   [32]byte
	path  string
	st    *Store
}

func newPeer(t *testing.T, name string, device uint32) *peer {
	t.Helper()
	ikp, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{
		addr:  protocol.NewSignalAddress(name, device),
		ikp:   ikp,
		regID: keyhelper.GenerateRegistrationID(),
		path:  filepath.Join(t.TempDir(), name+".db"),
	}
	rand.Read(p.key[:])
	p.open(t)
	t.Cleanup(func() { p.st.Close() })
	return p
}

func (p *peer) open(t *testing.T) {
	t.Helper()
	st, err := Open(p.path, p.key, p.ikp, p.regID)
	if err != nil {
		t.Fatalf("Open %s: %v", p.addr, err)
	}
	p.st = st
}

func (p *peer) reopen(t *testing.T) {
	t.Helper()
	if err := p.st.Close(); err != nil {
		t.Fatal(err)
	}
	p.open(t)
}

// cipherTo returns a fresh session cipher from p to remote.
func (p *peer) cipherTo(remote *peer) *session.Cipher {
	b := session.NewBuilderFromSignal(p.st, remote.addr, p.st.Serializer())
	return session.NewCipher(b, remote.addr)
}

// publishBundle stores a signed prekey and one one-time prekey in p's store
// and returns the bundle a server would hand out.
func (p *peer) publishBundle(t *testing.T, ctx context.Context) *prekey.Bundle {
	t.Helper()
	ser := p.st.Serializer()
	preKeys, err := keyhelper.GeneratePreKeys(1, 3, ser.PreKeyRecord)
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range preKeys {
		if err := p.st.StorePreKey(ctx, pk.ID().Value, pk); err != nil {
			t.Fatal(err)
		}
	}
	signed, err := keyhelper.GenerateSignedPreKey(p.ikp, 7, ser.SignedPreKeyRecord)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.st.StoreSignedPreKey(ctx, signed.ID(), signed); err != nil {
		t.Fatal(err)
	}
	pk := preKeys[1]
	return prekey.NewBundle(p.regID, p.addr.DeviceID(), optional.NewOptionalUint32(pk.ID().Value), signed.ID(),
		pk.KeyPair().PublicKey(), signed.KeyPair().PublicKey(), signed.Signature(), p.ikp.PublicKey())
}

// send encrypts plaintext from p to remote and returns the wire bytes and
// the message type.
func send(t *testing.T, ctx context.Context, from, to *peer, plaintext string) ([]byte, uint32) {
	t.Helper()
	msg, err := from.cipherTo(to).Encrypt(ctx, []byte(plaintext))
	if err != nil {
		t.Fatalf("%s encrypt: %v", from.addr, err)
	}
	return msg.Serialize(), msg.Type()
}

// receive parses wire bytes as a client would and decrypts them.
func receive(t *testing.T, ctx context.Context, at, from *peer, wire []byte, typ uint32) string {
	t.Helper()
	ser := at.st.Serializer()
	c := at.cipherTo(from)
	var plain []byte
	var err error
	switch typ {
	case protocol.PREKEY_TYPE:
		var m *protocol.PreKeySignalMessage
		if m, err = protocol.NewPreKeySignalMessageFromBytes(wire, ser.PreKeySignalMessage, ser.SignalMessage); err == nil {
			plain, err = c.DecryptMessage(ctx, m)
		}
	case protocol.WHISPER_TYPE:
		var m *protocol.SignalMessage
		if m, err = protocol.NewSignalMessageFromBytes(wire, ser.SignalMessage); err == nil {
			plain, err = c.Decrypt(ctx, m)
		}
	default:
		t.Fatalf("unexpected message type %d", typ)
	}
	if err != nil {
		t.Fatalf("%s decrypt: %v", at.addr, err)
	}
	return string(plain)
}

func exchange(t *testing.T, ctx context.Context, from, to *peer, text string, wantType uint32) {
	t.Helper()
	wire, typ := send(t, ctx, from, to, text)
	if typ != wantType {
		t.Fatalf("%s sent type %d, want %d", from.addr, typ, wantType)
	}
	if got := receive(t, ctx, to, from, wire, typ); got != text {
		t.Fatalf("%s received %q, want %q", to.addr, got, text)
	}
}

func TestX3DHAndRatchetSurviveReopen(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", 1), newPeer(t, "bob", 1)
	bundle := bob.publishBundle(t, ctx)
	builder := session.NewBuilderFromSignal(alice.st, bob.addr, alice.st.Serializer())
	if err := builder.ProcessBundle(ctx, bundle); err != nil {
		t.Fatalf("ProcessBundle: %v", err)
	}
	exchange(t, ctx, alice, bob, "hello bob", protocol.PREKEY_TYPE)
	if ok, err := bob.st.ContainsPreKey(ctx, bundle.PreKeyID().Value); err != nil || ok {
		t.Fatalf("one-time prekey still stored after use (ok=%v, err=%v)", ok, err)
	}
	if ok, _ := bob.st.ContainsPreKey(ctx, 1); !ok {
		t.Fatal("unused prekey 1 was removed")
	}
	assertRemoteIdentity(t, ctx, bob, alice)
	assertRemoteIdentity(t, ctx, alice, bob)
	exchange(t, ctx, bob, alice, "hi alice", protocol.WHISPER_TYPE)

	alice.reopen(t)
	bob.reopen(t)
	for i, text := range []string{"one", "two", "three"} {
		exchange(t, ctx, alice, bob, text, protocol.WHISPER_TYPE)
		exchange(t, ctx, bob, alice, text+" back", protocol.WHISPER_TYPE)
		if i == 1 {
			alice.reopen(t)
		}
	}
	// Two messages in a row from one side, then out of order delivery.
	w1, t1 := send(t, ctx, alice, bob, "first")
	w2, t2 := send(t, ctx, alice, bob, "second")
	bob.reopen(t)
	if receive(t, ctx, bob, alice, w2, t2) != "second" || receive(t, ctx, bob, alice, w1, t1) != "first" {
		t.Fatal("out of order messages decrypted wrongly")
	}
}

func assertRemoteIdentity(t *testing.T, ctx context.Context, at, of *peer) {
	t.Helper()
	k, ok, err := at.st.RemoteIdentity(ctx, of.addr)
	if err != nil || !ok || !bytes.Equal(k.Serialize(), of.ikp.PublicKey().Serialize()) {
		t.Fatalf("%s: RemoteIdentity(%s) = %v, %v, %v", at.addr, of.addr, k, ok, err)
	}
}

func TestGroupAfterReopen(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", 1), newPeer(t, "bob", 1)
	builder := session.NewBuilderFromSignal(alice.st, bob.addr, alice.st.Serializer())
	if err := builder.ProcessBundle(ctx, bob.publishBundle(t, ctx)); err != nil {
		t.Fatal(err)
	}
	exchange(t, ctx, alice, bob, "setup", protocol.PREKEY_TYPE)
	alice.reopen(t)
	bob.reopen(t)

	skn := protocol.NewSenderKeyName("group-1", alice.addr)
	skdm, err := groups.NewGroupSessionBuilder(alice.st, alice.st.Serializer()).Create(ctx, skn)
	if err != nil {
		t.Fatalf("group Create: %v", err)
	}
	// The distribution message travels over the 1:1 session.
	wire, typ := send(t, ctx, alice, bob, string(skdm.Serialize()))
	got := receive(t, ctx, bob, alice, wire, typ)
	bobSer := bob.st.Serializer()
	received, err := protocol.NewSenderKeyDistributionMessageFromBytes([]byte(got), bobSer.SenderKeyDistributionMessage)
	if err != nil {
		t.Fatal(err)
	}
	if err := groups.NewGroupSessionBuilder(bob.st, bobSer).Process(ctx, skn, received); err != nil {
		t.Fatalf("group Process: %v", err)
	}
	for round, text := range []string{"to the group", "again, after reopen"} {
		if round == 1 {
			alice.reopen(t)
			bob.reopen(t)
		}
		if got := groupRoundTrip(t, ctx, alice, bob, skn, text); got != text {
			t.Fatalf("group message %q decrypted as %q", text, got)
		}
	}
}

func groupRoundTrip(t *testing.T, ctx context.Context, from, to *peer, skn *protocol.SenderKeyName, text string) string {
	t.Helper()
	gb := groups.NewGroupSessionBuilder(from.st, from.st.Serializer())
	msg, err := groups.NewGroupCipher(gb, skn, from.st).Encrypt(ctx, []byte(text))
	if err != nil {
		t.Fatalf("group Encrypt: %v", err)
	}
	ser := to.st.Serializer()
	parsed, err := protocol.NewSenderKeyMessageFromBytes(msg.SignedSerialize(), ser.SenderKeyMessage)
	if err != nil {
		t.Fatal(err)
	}
	rb := groups.NewGroupSessionBuilder(to.st, ser)
	plain, err := groups.NewGroupCipher(rb, skn, to.st).Decrypt(ctx, parsed)
	if err != nil {
		t.Fatalf("group Decrypt: %v", err)
	}
	return string(plain)
}

func TestChangedIdentityNotTrusted(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", 1), newPeer(t, "bob", 1)
	builder := session.NewBuilderFromSignal(alice.st, bob.addr, alice.st.Serializer())
	if err := builder.ProcessBundle(ctx, bob.publishBundle(t, ctx)); err != nil {
		t.Fatal(err)
	}
	impostor, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := alice.st.IsTrustedIdentity(ctx, bob.addr, impostor.PublicKey()); err != nil || ok {
		t.Fatalf("changed identity trusted (ok=%v, err=%v)", ok, err)
	}
	if ok, err := alice.st.IsTrustedIdentity(ctx, bob.addr, bob.ikp.PublicKey()); err != nil || !ok {
		t.Fatalf("recorded identity not trusted (ok=%v, err=%v)", ok, err)
	}
	stranger := protocol.NewSignalAddress("carol", 1)
	if ok, err := alice.st.IsTrustedIdentity(ctx, stranger, impostor.PublicKey()); err != nil || !ok {
		t.Fatalf("first-use identity not trusted (ok=%v, err=%v)", ok, err)
	}
	if _, ok, err := alice.st.RemoteIdentity(ctx, stranger); err != nil || ok {
		t.Fatalf("RemoteIdentity of unknown address: ok=%v err=%v", ok, err)
	}
}

// A ratchet step taken through a store bound to a transaction commits with
// the transaction's other writes, or not at all: a failed transaction
// leaves the session as it was (the same message key is used again), a
// committed one advances it.
func TestBoundTransaction(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", 1), newPeer(t, "bob", 1)
	b := session.NewBuilderFromSignal(alice.st, bob.addr, alice.st.Serializer())
	if err := b.ProcessBundle(ctx, bob.publishBundle(t, ctx)); err != nil {
		t.Fatal(err)
	}
	exchange(t, ctx, alice, bob, "hello", protocol.PREKEY_TYPE)
	exchange(t, ctx, bob, alice, "hi", protocol.WHISPER_TYPE)

	// sealIn encrypts text to bob and keeps it under history/m1, in tx.
	sealIn := func(tx *Tx, text string) ([]byte, error) {
		st := tx.Signal()
		before, err := st.LoadSession(ctx, bob.addr)
		if err != nil {
			return nil, err
		}
		index := before.SessionState().SenderChainKey().Index()
		m, err := session.NewCipher(session.NewBuilderFromSignal(st, bob.addr, st.Serializer()), bob.addr).Encrypt(ctx, []byte(text))
		if err != nil {
			return nil, err
		}
		// Read back inside: the bound store sees its own write.
		if after, err := st.LoadSession(ctx, bob.addr); err != nil || after.SessionState().SenderChainKey().Index() != index+1 {
			return nil, fmt.Errorf("the bound store does not see its write (%v)", err)
		}
		return m.Serialize(), tx.Put("history", "m1", []byte(text))
	}
	// In a transaction that fails: neither the session nor the other write
	// stays.
	var first, second []byte
	failed := errors.New("the message could not be stored")
	err := alice.st.Update(func(tx *Tx) (err error) {
		if first, err = sealIn(tx, "lost"); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatal(err)
	}
	if _, ok, _ := alice.st.Get("history", "m1"); ok {
		t.Fatal("the failed transaction's write stayed")
	}
	// Committed: one commit for the step and the message.
	if err := alice.st.Update(func(tx *Tx) (err error) {
		second, err = sealIn(tx, "kept")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	m1, _ := protocol.NewSignalMessageFromBytes(first, alice.st.Serializer().SignalMessage)
	m2, _ := protocol.NewSignalMessageFromBytes(second, alice.st.Serializer().SignalMessage)
	if m1.Counter() != m2.Counter() {
		t.Fatalf("the rolled-back step moved the chain: counters %d then %d", m1.Counter(), m2.Counter())
	}
	if got := receive(t, ctx, bob, alice, second, protocol.WHISPER_TYPE); got != "kept" {
		t.Fatalf("bob got %q", got)
	}
	exchange(t, ctx, alice, bob, "next", protocol.WHISPER_TYPE) // the committed step holds
	alice.reopen(t)
	exchange(t, ctx, alice, bob, "after reopen", protocol.WHISPER_TYPE)
}
