package ledger

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

type testNode struct {
	id  string
	key ed25519.PrivateKey
	val ed25519.PrivateKey // consensus key; nil for a full node
}

func newNode(t testing.TB, validator bool) *testNode {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	n := &testNode{id: NodeID(key.Public().(ed25519.PublicKey)), key: key}
	if validator {
		_, n.val, _ = ed25519.GenerateKey(rand.Reader)
	}
	return n
}

func (n *testNode) valPub() []byte {
	if n.val == nil {
		return nil
	}
	return n.val.Public().(ed25519.PublicKey)
}

// registerMsg is the RegisterNode a node sends for itself.
func (n *testNode) registerMsg(url string) *tokenimv1.RegisterNode {
	reg := &tokenimv1.RegisterNode{NodeId: n.id, NodeKey: n.key.Public().(ed25519.PublicKey), ApiUrl: url}
	if n.val != nil {
		reg.ValidatorKey = n.valPub()
		reg.ValidatorSignature = SignValidatorProof(testChain, n.id, n.val)
	}
	return reg
}

func (n *testNode) body(seq uint64) *tokenimv1.TxBody {
	return &tokenimv1.TxBody{ChainId: testChain, Signer: NodeSigner(n.id), Sequence: seq}
}

func (n *testNode) register(t testing.TB, seq uint64, url string) []byte {
	b := n.body(seq)
	b.Msg = &tokenimv1.TxBody_RegisterNode{RegisterNode: n.registerMsg(url)}
	return sign(t, b, n.key)
}

// registerWith signs a RegisterNode edited by edit.
func (n *testNode) registerWith(t testing.TB, edit func(*tokenimv1.TxBody)) []byte {
	b := n.body(0)
	b.Msg = &tokenimv1.TxBody_RegisterNode{RegisterNode: n.registerMsg("https://n.example:8443")}
	edit(b)
	return sign(t, b, n.key)
}

func deliver(t testing.TB, m *Machine, kv KV, raw []byte) Result {
	t.Helper()
	res, err := m.Deliver(kv, testBlock, raw)
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return res
}

func TestNodeIDMatchesCometBFT(t *testing.T) {
	n := newNode(t, false)
	pub := n.key.Public().(ed25519.PublicKey)
	if want := string(p2p.PubKeyToID(cmted25519.PubKey(pub))); NodeID(pub) != want {
		t.Fatalf("NodeID %s, CometBFT %s", NodeID(pub), want)
	}
	if NodeSigner(n.id) != "node/"+n.id {
		t.Fatal(NodeSigner(n.id))
	}
}

// A node proves its CometBFT validator key (privval FilePV's PrivKey) the
// way internal/node does: SignValidatorProof over the key's bytes.
func TestValidatorProofWithCometBFTKey(t *testing.T) {
	pv := cmted25519.GenPrivKey()
	n := newNode(t, false)
	reg := n.registerMsg("https://n.example")
	reg.ValidatorKey = pv.PubKey().Bytes()
	reg.ValidatorSignature = SignValidatorProof(testChain, n.id, ed25519.PrivateKey(pv.Bytes()))
	body := n.body(0)
	body.Msg = &tokenimv1.TxBody_RegisterNode{RegisterNode: reg}
	deliver(t, NewMachine(), newState(t, 0), sign(t, body, n.key))
}

func TestRegisterNode(t *testing.T) {
	m := NewMachine()
	kv := newState(t, 0)
	a, b := newNode(t, true), newNode(t, false)
	first := a.register(t, 0, "https://a.example:8443")
	deliver(t, m, kv, first)
	deliver(t, m, kv, b.register(t, 0, "http://10.0.0.2:8080/api"))
	rec, err := GetNode(kv, a.id)
	if err != nil || rec.Sequence != 1 || rec.RegisteredHeight != testBlock.Height || string(rec.ValidatorKey) != string(a.valPub()) {
		t.Fatalf("record %v, %v", rec, err)
	}
	// An update by the same key, at the node's sequence.
	later := Block{ChainID: testChain, Height: 9}
	if _, err := m.Deliver(kv, later, a.register(t, 1, "https://a2.example")); err != nil {
		t.Fatalf("update: %v", err)
	}
	rec, _ = GetNode(kv, a.id)
	if rec.ApiUrl != "https://a2.example" || rec.Sequence != 2 || rec.RegisteredHeight != testBlock.Height {
		t.Fatalf("after update: %v", rec)
	}
	list, err := ListNodes(kv)
	if err != nil || len(list) != 2 || list[0].NodeId >= list[1].NodeId {
		t.Fatalf("ListNodes: %v, %v", list, err)
	}
	if _, err := GetNode(kv, newNode(t, false).id); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("GetNode of an unknown node: %v", err)
	}
}

func TestRegisterNodeRejections(t *testing.T) {
	m := NewMachine()
	kv := newState(t, 0)
	a := newNode(t, true)
	first := a.register(t, 0, "https://a.example:8443")
	deliver(t, m, kv, first)
	deliver(t, m, kv, a.register(t, 1, "https://a2.example"))
	other := newNode(t, true)
	reg := func(edit func(b *tokenimv1.TxBody, r *tokenimv1.RegisterNode)) []byte {
		return other.registerWith(t, func(b *tokenimv1.TxBody) { edit(b, b.GetRegisterNode()) })
	}
	url := func(u string) []byte {
		return reg(func(_ *tokenimv1.TxBody, r *tokenimv1.RegisterNode) { r.ApiUrl = u })
	}
	stranger := newNode(t, false).id
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"replay of the first registration", first, ErrBadSequence},
		{"old sequence", a.register(t, 1, "https://a3.example"), ErrBadSequence},
		{"future sequence", a.register(t, 7, "https://a3.example"), ErrBadSequence},
		{"update signed by another key", func() []byte {
			body := a.body(2)
			body.Msg = &tokenimv1.TxBody_RegisterNode{RegisterNode: a.registerMsg("https://evil.example")}
			return sign(t, body, other.key)
		}(), ErrBadSignature},
		{"first registration at sequence 1", other.register(t, 1, "https://o.example"), ErrBadSequence},
		{"wrong node_id", reg(func(b *tokenimv1.TxBody, r *tokenimv1.RegisterNode) {
			r.NodeId, b.Signer = stranger, NodeSigner(stranger)
		}), ErrInvalidNode},
		{"signer is another node", reg(func(b *tokenimv1.TxBody, _ *tokenimv1.RegisterNode) { b.Signer = NodeSigner(a.id) }), ErrInvalidNode},
		{"account signer", reg(func(b *tokenimv1.TxBody, _ *tokenimv1.RegisterNode) { b.Signer = "alice" }), ErrInvalidNode},
		{"malformed node id", reg(func(b *tokenimv1.TxBody, r *tokenimv1.RegisterNode) {
			r.NodeId, b.Signer = "index", NodeSigner("index")
		}), ErrInvalidNode},
		{"ftp url", url("ftp://o.example"), ErrInvalidNode},
		{"url without host", url("http://"), ErrInvalidNode},
		{"url with only a port", url("https://:8443"), ErrInvalidNode},
		{"relative url", url("o.example:8443"), ErrInvalidNode},
		{"url with credentials", url("https://user:pw@o.example"), ErrInvalidNode},
		{"url with fragment", url("https://o.example/#x"), ErrInvalidNode},
		{"url too long", url("https://o.example/" + strings.Repeat("a", MaxAPIURL)), ErrInvalidNode},
		{"short validator key", reg(func(_ *tokenimv1.TxBody, r *tokenimv1.RegisterNode) { r.ValidatorKey = r.ValidatorKey[:31] }), ErrInvalidKey},
		{"validator key without proof", reg(func(_ *tokenimv1.TxBody, r *tokenimv1.RegisterNode) { r.ValidatorSignature = nil }), ErrInvalidNode},
		{"proof without validator key", reg(func(_ *tokenimv1.TxBody, r *tokenimv1.RegisterNode) { r.ValidatorKey = nil }), ErrInvalidNode},
		{"proof made for another node", reg(func(_ *tokenimv1.TxBody, r *tokenimv1.RegisterNode) {
			r.ValidatorSignature = SignValidatorProof(testChain, a.id, other.val)
		}), ErrInvalidNode},
		{"proof made for another chain", reg(func(_ *tokenimv1.TxBody, r *tokenimv1.RegisterNode) {
			r.ValidatorSignature = SignValidatorProof("other-chain", other.id, other.val)
		}), ErrInvalidNode},
		{"claims another node's validator key", reg(func(_ *tokenimv1.TxBody, r *tokenimv1.RegisterNode) { r.ValidatorKey = a.valPub() }), ErrInvalidNode},
		{"wrong chain", reg(func(b *tokenimv1.TxBody, _ *tokenimv1.RegisterNode) { b.ChainId = "other-chain" }), ErrWrongChain},
	}
	runRejections(t, m, kv, cases)
}

type rejection = struct {
	name string
	raw  []byte
	want error
}

// runRejections delivers each case's tx and wants its error, its code
// mapping, and no state written.
func runRejections(t *testing.T, m *Machine, kv mapKV, cases []rejection) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(kv)
			_, err := m.Deliver(kv, testBlock, c.raw)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if Code(err) != Code(c.want) || CodeError(Code(err)) != c.want {
				t.Fatalf("code mapping broken for %v", err)
			}
			if !sameState(before, kv) {
				t.Fatal("a rejected tx wrote state")
			}
		})
	}
}

func snapshot(kv mapKV) mapKV {
	out := mapKV{}
	for k, v := range kv {
		out[k] = v
	}
	return out
}

func sameState(a, b mapKV) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if string(b[k]) != string(v) {
			return false
		}
	}
	return true
}

func TestRegistryFull(t *testing.T) {
	kv := newState(t, 0)
	idx := &tokenimv1.NodeIndex{}
	for i := 0; i < MaxNodes; i++ {
		idx.NodeIds = append(idx.NodeIds, newNode(t, false).id)
	}
	if err := setProto(kv, keyNodeIndex, idx); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, false)
	if _, err := NewMachine().Deliver(kv, testBlock, n.register(t, 0, "https://n.example")); !errors.Is(err, ErrRegistryFull) {
		t.Fatalf("got %v", err)
	}
}

func TestSetHomeNodes(t *testing.T) {
	m := NewMachine()
	kv := newState(t, 0)
	alice := newUser(t, "alice")
	deliver(t, m, kv, sign(t, alice.registerBody(t, 0), alice.key))
	var ids []string
	for i := 0; i < 4; i++ {
		n := newNode(t, false)
		deliver(t, m, kv, n.register(t, 0, "https://n.example"))
		ids = append(ids, n.id)
	}
	home := func(seq uint64, ids ...string) []byte {
		return sign(t, &tokenimv1.TxBody{ChainId: testChain, Signer: "alice", Sequence: seq,
			Msg: &tokenimv1.TxBody_SetHomeNodes{SetHomeNodes: &tokenimv1.SetHomeNodes{NodeIds: ids}}}, alice.key)
	}
	deliver(t, m, kv, home(1, ids[2], ids[0], ids[1]))
	deliver(t, m, kv, home(2, ids[3]))
	acct, _ := GetAccount(kv, "alice")
	if acct.Sequence != 3 || len(acct.HomeNodes) != 1 || acct.HomeNodes[0] != ids[3] {
		t.Fatalf("account: %v", acct)
	}
	nodeSigned := newNode(t, false)
	byNode := nodeSigned.body(0)
	byNode.Msg = &tokenimv1.TxBody_SetHomeNodes{SetHomeNodes: &tokenimv1.SetHomeNodes{NodeIds: ids[:1]}}
	runRejections(t, m, kv, []rejection{
		{"unknown node", home(3, ids[0], newNode(t, false).id), ErrUnknownNode},
		{"malformed node id", home(3, "NODE"), ErrInvalidNode},
		{"more than 3", home(3, ids...), ErrInvalidHomeNodes},
		{"none", home(3), ErrInvalidHomeNodes},
		{"duplicate", home(3, ids[0], ids[1], ids[0]), ErrInvalidHomeNodes},
		{"replay", home(2, ids[3]), ErrBadSequence},
		{"signed by a node", sign(t, byNode, nodeSigned.key), ErrInvalidHandle},
	})
}

// Flipping any bit of a node's signed registration gets it rejected.
func TestTamperedNodeTxRejected(t *testing.T) {
	m := NewMachine()
	n := newNode(t, true)
	raw := n.register(t, 0, "https://n.example:8443")
	if _, err := m.Deliver(newState(t, 0), testBlock, raw); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			tampered := append([]byte(nil), raw...)
			tampered[i] ^= bit
			if _, err := m.Deliver(newState(t, 0), testBlock, tampered); err == nil {
				t.Fatalf("flipping bit %#x of byte %d was accepted", bit, i)
			}
		}
	}
}

func TestReplicationFactor(t *testing.T) {
	cases := []struct {
		genesis *tokenimv1.Params
		want    int
		ok      bool
	}{
		{nil, DefaultReplicationFactor, true},
		{&tokenimv1.Params{}, DefaultReplicationFactor, true},
		{&tokenimv1.Params{ReplicationFactor: 5}, 5, true},
		{&tokenimv1.Params{ReplicationFactor: MaxReplicationFactor + 1}, 0, false},
	}
	for _, c := range cases {
		kv := mapKV{}
		err := InitGenesis(kv, &tokenimv1.GenesisState{Params: c.genesis})
		if (err == nil) != c.ok {
			t.Fatalf("%v: %v", c.genesis, err)
		}
		if err != nil {
			continue
		}
		p, _ := GetParams(kv)
		if p.ReplicationFactor != uint32(c.want) || ReplicationFactor(p) != c.want {
			t.Fatalf("%v: stored %d", c.genesis, p.ReplicationFactor)
		}
	}
	if ReplicationFactor(nil) != DefaultReplicationFactor {
		t.Fatal("nil params")
	}
}
