package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/util/keyhelper"
)

// rawUser builds transactions by hand, to send the node what a correct
// client never would.
type rawUser struct {
	handle string
	key    ed25519.PrivateKey
	ik     *identity.KeyPair
}

func newRawUser(t *testing.T, handle string) *rawUser {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ik, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return &rawUser{handle: handle, key: key, ik: ik}
}

func (u *rawUser) spk(t *testing.T, id uint32) *tokenimv1.SignedPrekey {
	rec, err := keyhelper.GenerateSignedPreKey(u.ik, id, serialize.NewProtoBufSerializer().SignedPreKeyRecord)
	if err != nil {
		t.Fatal(err)
	}
	sig := rec.Signature()
	return &tokenimv1.SignedPrekey{Id: id, PublicKey: rec.KeyPair().PublicKey().Serialize(), Signature: sig[:]}
}

func (u *rawUser) register(t *testing.T, chain string, difficulty uint32) []byte {
	pub := u.key.Public().(ed25519.PublicKey)
	reg := &tokenimv1.RegisterAccount{Handle: u.handle, AccountKey: pub, IdentityKey: u.ik.PublicKey().Serialize(),
		RegistrationId: 7, SignedPrekey: u.spk(t, 1), PowNonce: ledger.SolveWork(chain, u.handle, pub, difficulty)}
	raw, err := ledger.SignTx(&tokenimv1.TxBody{ChainId: chain, Signer: u.handle, Msg: &tokenimv1.TxBody_RegisterAccount{RegisterAccount: reg}}, u.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (u *rawUser) rotateBody(t *testing.T, chain string, seq uint64, spkID uint32) *tokenimv1.TxBody {
	return &tokenimv1.TxBody{ChainId: chain, Signer: u.handle, Sequence: seq,
		Msg: &tokenimv1.TxBody_RotateSignedPrekey{RotateSignedPrekey: &tokenimv1.RotateSignedPrekey{SignedPrekey: u.spk(t, spkID)}}}
}

func (u *rawUser) rotate(t *testing.T, chain string, seq uint64, spkID uint32) []byte {
	raw, err := ledger.SignTx(u.rotateBody(t, chain, seq, spkID), u.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
