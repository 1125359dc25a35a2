package ledger

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/util/keyhelper"
)

// mapKV is an in-memory KV for tests.
type mapKV map[string][]byte

func (m mapKV) Get(k []byte) ([]byte, error) { return m[string(k)], nil }
func (m mapKV) Set(k, v []byte) error        { m[string(k)] = append([]byte(nil), v...); return nil }
func (m mapKV) Delete(k []byte) error        { delete(m, string(k)); return nil }

const testChain = "tokenim-test"

var testBlock = Block{ChainID: testChain, Height: 7, TimeMs: 1_700_000_000_000}

type testUser struct {
	handle string
	key    ed25519.PrivateKey
	ik     *identity.KeyPair
}

func newUser(t testing.TB, handle string) *testUser {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ik, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return &testUser{handle: handle, key: key, ik: ik}
}

func (u *testUser) signedPrekey(t testing.TB, id uint32) *tokenimv1.SignedPrekey {
	spk, err := keyhelper.GenerateSignedPreKey(u.ik, id, serialize.NewProtoBufSerializer().SignedPreKeyRecord)
	if err != nil {
		t.Fatal(err)
	}
	sig := spk.Signature()
	return &tokenimv1.SignedPrekey{Id: id, PublicKey: spk.KeyPair().PublicKey().Serialize(), Signature: sig[:]}
}

func (u *testUser) registerBody(t testing.TB, difficulty uint32) *tokenimv1.TxBody {
	pub := u.key.Public().(ed25519.PublicKey)
	reg := &tokenimv1.RegisterAccount{
		Handle: u.handle, AccountKey: pub, IdentityKey: u.ik.PublicKey().Serialize(),
		RegistrationId: 42, SignedPrekey: u.signedPrekey(t, 1),
		PowNonce: SolveWork(testChain, u.handle, pub, difficulty),
	}
	return &tokenimv1.TxBody{ChainId: testChain, Signer: u.handle, Msg: &tokenimv1.TxBody_RegisterAccount{RegisterAccount: reg}}
}

func (u *testUser) rotateBody(t testing.TB, seq uint64) *tokenimv1.TxBody {
	return &tokenimv1.TxBody{ChainId: testChain, Signer: u.handle, Sequence: seq,
		Msg: &tokenimv1.TxBody_RotateSignedPrekey{RotateSignedPrekey: &tokenimv1.RotateSignedPrekey{SignedPrekey: u.signedPrekey(t, uint32(seq+1))}}}
}

func sign(t testing.TB, body *tokenimv1.TxBody, key ed25519.PrivateKey) []byte {
	t.Helper()
	raw, err := SignTx(body, key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newState(t testing.TB, difficulty uint32) mapKV {
	kv := mapKV{}
	if err := InitGenesis(kv, &tokenimv1.GenesisState{Params: &tokenimv1.Params{PowDifficulty: difficulty}}); err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestRegisterAndRotate(t *testing.T) {
	m := NewMachine()
	kv := newState(t, 4)
	alice := newUser(t, "alice")
	if _, err := m.Deliver(kv, testBlock, sign(t, alice.registerBody(t, 4), alice.key)); err != nil {
		t.Fatalf("register: %v", err)
	}
	acct, err := GetAccount(kv, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if acct.Sequence != 1 || acct.RegisteredHeight != 7 || acct.KeyEvents != 1 {
		t.Fatalf("account after register: %v", acct)
	}
	rot := alice.rotateBody(t, 1)
	if _, err := m.Deliver(kv, testBlock, sign(t, rot, alice.key)); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	hist, err := GetKeyHistory(kv, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[1].Kind != tokenimv1.KeyEvent_KIND_SIGNED_PREKEY_ROTATED || hist[1].SignedPrekey.Id != 2 {
		t.Fatalf("history: %v", hist)
	}
	if hist[0].SignedPrekey.Id != 1 {
		t.Fatalf("history rewrote the first key: %v", hist[0])
	}
	// The same rotation again is a replay.
	if _, err := m.Deliver(kv, testBlock, sign(t, rot, alice.key)); !errors.Is(err, ErrBadSequence) {
		t.Fatalf("replay: got %v", err)
	}
}

func TestRejections(t *testing.T) {
	m := NewMachine()
	kv := newState(t, 4)
	alice, mallory := newUser(t, "alice"), newUser(t, "mallory")
	if _, err := m.Deliver(kv, testBlock, sign(t, alice.registerBody(t, 4), alice.key)); err != nil {
		t.Fatal(err)
	}
	bob := newUser(t, "bob")
	forgedSPK := bob.registerBody(t, 4)
	forgedSPK.GetRegisterAccount().SignedPrekey = mallory.signedPrekey(t, 1)
	taken := newUser(t, "alice")
	takenUpper := newUser(t, "alice").registerBody(t, 4)
	wrongChain := bob.registerBody(t, 4)
	wrongChain.ChainId = "other"
	badHandle := newUser(t, "a!").registerBody(t, 4)
	shortKey := bob.registerBody(t, 4)
	shortKey.GetRegisterAccount().AccountKey = shortKey.GetRegisterAccount().AccountKey[:31]
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"garbage", []byte{1, 2, 3}, ErrDecode},
		{"too large", make([]byte, MaxTxBytes+1), ErrTooLarge},
		{"handle taken", sign(t, taken.registerBody(t, 4), taken.key), ErrHandleTaken},
		{"taken other case", func() []byte {
			b := takenUpper
			b.Signer, b.GetRegisterAccount().Handle = "ALICE", "ALICE"
			return sign(t, b, taken.key)
		}(), ErrInvalidHandle},
		{"wrong key signs", sign(t, bob.registerBody(t, 4), mallory.key), ErrBadSignature},
		{"rotation by wrong key", sign(t, alice.rotateBody(t, 1), mallory.key), ErrBadSignature},
		{"unknown signer", sign(t, mallory.rotateBody(t, 1), mallory.key), ErrUnknownAccount},
		{"reordered sequence", sign(t, alice.rotateBody(t, 5), alice.key), ErrBadSequence},
		{"wrong chain", sign(t, wrongChain, bob.key), ErrWrongChain},
		{"malformed handle", sign(t, badHandle, bob.key), ErrInvalidHandle},
		{"forged signed prekey", sign(t, forgedSPK, bob.key), ErrInvalidPrekey},
		{"short account key", sign(t, shortKey, bob.key), ErrInvalidKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(kv)
			_, err := m.Deliver(kv, testBlock, c.raw)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if Code(err) != Code(c.want) || CodeError(Code(err)) != c.want {
				t.Fatalf("code mapping broken for %v", err)
			}
			if len(kv) != before {
				t.Fatalf("a rejected tx wrote state")
			}
		})
	}
}

func TestInsufficientWork(t *testing.T) {
	m := NewMachine()
	kv := newState(t, 12)
	u := newUser(t, "carol")
	body := u.registerBody(t, 12)
	reg := body.GetRegisterAccount()
	for reg.PowNonce = 0; CheckWork(testChain, "carol", reg.AccountKey, reg.PowNonce, 12); reg.PowNonce++ {
	}
	if _, err := m.Deliver(kv, testBlock, sign(t, body, u.key)); !errors.Is(err, ErrInsufficientWork) {
		t.Fatalf("got %v", err)
	}
}

func TestCheckAllowsFutureSequence(t *testing.T) {
	m := NewMachine()
	kv := newState(t, 0)
	u := newUser(t, "dave")
	if _, err := m.Deliver(kv, testBlock, sign(t, u.registerBody(t, 0), u.key)); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(kv, testBlock, sign(t, u.rotateBody(t, 2), u.key)); err != nil {
		t.Fatalf("check of a queued sequence: %v", err)
	}
	if _, err := m.Deliver(kv, testBlock, sign(t, u.rotateBody(t, 2), u.key)); !errors.Is(err, ErrBadSequence) {
		t.Fatalf("deliver out of order: %v", err)
	}
}

func TestTamperedTxRejected(t *testing.T) {
	m := NewMachine()
	u := newUser(t, "erin")
	raw := sign(t, u.registerBody(t, 0), u.key)
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			kv := newState(t, 0)
			tampered := append([]byte(nil), raw...)
			tampered[i] ^= bit
			if _, err := m.Deliver(kv, testBlock, tampered); err == nil {
				t.Fatalf("flipping bit %#x of byte %d was accepted", bit, i)
			}
		}
	}
}

func TestNormalizeHandle(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"alice", "alice", true}, {"@Bob_1", "bob_1", true}, {"ab", "", false},
		{"a_very_long_handle_over_32_chars_x", "", false}, {"al ice", "", false},
		{"ålice", "", false}, {"abc", "abc", true}, {"ABC", "abc", true},
	}
	for _, c := range cases {
		got, err := NormalizeHandle(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("NormalizeHandle(%q) = %q, %v", c.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidHandle) {
			t.Errorf("error is not ErrInvalidHandle: %v", err)
		}
	}
}

func FuzzDecodeTx(f *testing.F) {
	u := newUser(f, "fuzz")
	f.Add(sign(f, u.registerBody(f, 0), u.key))
	f.Add(codec.MustMarshal(&tokenimv1.Tx{Body: []byte{1}, Signature: make([]byte, 64)}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, err := DecodeTx(raw)
		if err != nil {
			return
		}
		re, err := codec.Marshal(&tokenimv1.Tx{Body: tx.bodyBytes, Signature: tx.signature})
		if err != nil || string(re) != string(raw) {
			t.Fatalf("decoded tx does not re-encode to its input")
		}
	})
}

func TestDeployPolicyOnChain(t *testing.T) {
	m := NewMachine()
	kv := newState(t, 0)
	u := newUser(t, "poly")
	if _, err := m.Deliver(kv, testBlock, sign(t, u.registerBody(t, 0), u.key)); err != nil {
		t.Fatal(err)
	}
	deploy := func(seq uint64, name, src string) error {
		_, err := m.Deliver(kv, testBlock, sign(t, &tokenimv1.TxBody{ChainId: testChain, Signer: "poly", Sequence: seq,
			Msg: &tokenimv1.TxBody_DeployPolicy{DeployPolicy: &tokenimv1.DeployPolicy{Name: name, Source: src}}}, u.key))
		return err
	}
	if err := deploy(1, "short-lived", "retention = duration(\"1h\")"); err != nil {
		t.Fatal(err)
	}
	rec, err := GetPolicy(kv, "short-lived")
	if err != nil || rec.Deployer != "poly" || rec.Height != testBlock.Height {
		t.Fatalf("record %v, %v", rec, err)
	}
	if byID, _ := GetPolicy(kv, rec.Id); byID.GetName() != "short-lived" {
		t.Fatal("not found by id")
	}
	cases := []struct {
		name, src string
		want      error
	}{
		{"short-lived", "rate = 1", ErrPolicyExists},
		{"Bad Name", "rate = 1", ErrInvalidPolicy},
		{"broken", "rate = \"x\"", ErrInvalidPolicy},
	}
	for _, c := range cases {
		if err := deploy(2, c.name, c.src); !errors.Is(err, c.want) {
			t.Fatalf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := GetPolicy(kv, "nope"); !errors.Is(err, ErrUnknownPolicy) {
		t.Fatalf("unknown: %v", err)
	}
}
