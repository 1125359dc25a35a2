package loadgen

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/nodeauth"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/util/keyhelper"
)

// account is a registered, authenticated load account.
type account struct {
	handle string
	key    ed25519.PrivateKey
	token  string
}

func (a *account) authHeader(h http.Header) { h.Set("Authorization", "Bearer "+a.token) }

// Account is a registered, authenticated account (for benchmarks that
// drive the node API directly).
type Account struct {
	Handle string
	Key    ed25519.PrivateKey
	Token  string
}

// Register registers n accounts on the node at nodeURL, at most 200 at a
// time (each waits for its block), and authenticates each.
func Register(ctx context.Context, nodeURL, prefix string, n int) ([]Account, error) {
	hc := httpClient()
	node := tokenimv1connect.NewNodeServiceClient(hc, nodeURL)
	relay := tokenimv1connect.NewRelayServiceClient(hc, nodeURL)
	var out []Account
	for start := 0; start < n; start += 200 {
		k := min(200, n-start)
		accts, err := registerAccounts(ctx, node, relay, fmt.Sprintf("%s%d_", prefix, start/200), k)
		if err != nil {
			return nil, err
		}
		for _, a := range accts {
			out = append(out, Account{Handle: a.handle, Key: a.key, Token: a.token})
		}
	}
	return out, nil
}

// registerAccounts registers n fresh accounts concurrently (they share
// blocks) and authenticates each.
func registerAccounts(ctx context.Context, node tokenimv1connect.NodeServiceClient, relay tokenimv1connect.RelayServiceClient, prefix string, n int) ([]*account, error) {
	st, err := node.Status(ctx, connect.NewRequest(&tokenimv1.StatusRequest{}))
	if err != nil {
		return nil, fmt.Errorf("node status: %w", err)
	}
	out := make([]*account, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = registerOne(ctx, node, relay, st.Msg, fmt.Sprintf("%s%d", prefix, i))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func registerOne(ctx context.Context, node tokenimv1connect.NodeServiceClient, relay tokenimv1connect.RelayServiceClient, st *tokenimv1.StatusResponse, handle string) (*account, error) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	ik, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		return nil, err
	}
	spk, err := keyhelper.GenerateSignedPreKey(ik, 1, serialize.NewProtoBufSerializer().SignedPreKeyRecord)
	if err != nil {
		return nil, err
	}
	sig := spk.Signature()
	reg := &tokenimv1.RegisterAccount{Handle: handle, AccountKey: pub, IdentityKey: ik.PublicKey().Serialize(), RegistrationId: 1,
		SignedPrekey: &tokenimv1.SignedPrekey{Id: 1, PublicKey: spk.KeyPair().PublicKey().Serialize(), Signature: sig[:]},
		PowNonce:     ledger.SolveWork(st.ChainId, handle, pub, st.PowDifficulty)}
	raw, err := ledger.SignTx(&tokenimv1.TxBody{ChainId: st.ChainId, Signer: handle, Msg: &tokenimv1.TxBody_RegisterAccount{RegisterAccount: reg}}, key)
	if err != nil {
		return nil, err
	}
	res, err := node.BroadcastTx(ctx, connect.NewRequest(&tokenimv1.BroadcastTxRequest{Tx: raw}))
	if err != nil {
		return nil, fmt.Errorf("register @%s: %w", handle, err)
	}
	if res.Msg.Code != 0 {
		return nil, fmt.Errorf("register @%s: %w (%s)", handle, ledger.CodeError(res.Msg.Code), res.Msg.Log)
	}
	ch, err := relay.Challenge(ctx, connect.NewRequest(&tokenimv1.ChallengeRequest{Handle: handle}))
	if err != nil {
		return nil, fmt.Errorf("challenge @%s: %w", handle, err)
	}
	auth, err := relay.Authenticate(ctx, connect.NewRequest(&tokenimv1.AuthenticateRequest{Handle: handle, Nonce: ch.Msg.Nonce,
		Signature: nodeauth.Sign(key, ch.Msg.NodeId, ch.Msg.Nonce)}))
	if err != nil {
		return nil, fmt.Errorf("authenticate @%s: %w", handle, err)
	}
	if err := setHome(ctx, node, st, handle, key, ch.Msg.NodeId); err != nil {
		return nil, err
	}
	return &account{handle: handle, key: key, token: auth.Msg.Token}, nil
}

// setHome makes the node the account's home node when the node is in the
// registry (in a network), so its mail is replicated there.
func setHome(ctx context.Context, node tokenimv1connect.NodeServiceClient, st *tokenimv1.StatusResponse, handle string, key ed25519.PrivateKey, nodeID string) error {
	nodes, err := node.ListNodes(ctx, connect.NewRequest(&tokenimv1.ListNodesRequest{}))
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(nodes.Msg.Nodes, func(r *tokenimv1.NodeRecord) bool { return r.NodeId == nodeID }) {
		return nil
	}
	raw, err := ledger.SignTx(&tokenimv1.TxBody{ChainId: st.ChainId, Signer: handle, Sequence: 1,
		Msg: &tokenimv1.TxBody_SetHomeNodes{SetHomeNodes: &tokenimv1.SetHomeNodes{NodeIds: []string{nodeID}}}}, key)
	if err != nil {
		return err
	}
	res, err := node.BroadcastTx(ctx, connect.NewRequest(&tokenimv1.BroadcastTxRequest{Tx: raw}))
	if err != nil {
		return fmt.Errorf("set home of @%s: %w", handle, err)
	}
	if res.Msg.Code != 0 {
		return fmt.Errorf("set home of @%s: %w (%s)", handle, ledger.CodeError(res.Msg.Code), res.Msg.Log)
	}
	return nil
}

func randomPrefix() string {
	var b [3]byte
	rand.Read(b[:])
	return "ld" + hex.EncodeToString(b[:]) + "_"
}
