package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/nodeauth"

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

// session registers u and authenticates it to the node; it returns the
// bearer token.
func (u *rawUser) session(t *testing.T) string {
	ctx := ctxT(t)
	nodeAPI := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, tn.url())
	relayAPI := tokenimv1connect.NewRelayServiceClient(http.DefaultClient, tn.url())
	st, err := nodeAPI.Status(ctx, connect.NewRequest(&tokenimv1.StatusRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := nodeAPI.BroadcastTx(ctx, connect.NewRequest(&tokenimv1.BroadcastTxRequest{Tx: u.register(t, st.Msg.ChainId, st.Msg.PowDifficulty)}))
	if err != nil || res.Msg.Code != 0 {
		t.Fatalf("register: %v %v", err, res)
	}
	ch, err := relayAPI.Challenge(ctx, connect.NewRequest(&tokenimv1.ChallengeRequest{Handle: u.handle}))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := relayAPI.Authenticate(ctx, connect.NewRequest(&tokenimv1.AuthenticateRequest{Handle: u.handle, Nonce: ch.Msg.Nonce, Signature: nodeauth.Sign(u.key, ch.Msg.NodeId, ch.Msg.Nonce)}))
	if err != nil {
		t.Fatal(err)
	}
	return auth.Msg.Token
}
