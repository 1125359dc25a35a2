package ledger

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"google.golang.org/protobuf/proto"
)

func openTestApp(t *testing.T, dir string) *App {
	t.Helper()
	a, err := OpenApp(dir, testChain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func runBlock(t *testing.T, a *App, height int64, txs ...[]byte) *abci.ResponseFinalizeBlock {
	t.Helper()
	ctx := context.Background()
	res, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: height, Time: time.Unix(1_700_000_000, 0), Txs: txs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(ctx, &abci.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	return res
}

// Two apps fed the same blocks agree on every app hash and validator
// update; the state survives a reopen, and Info reports it for CometBFT's
// handshake.
func TestAppDeterministicAndDurable(t *testing.T) {
	ctx := context.Background()
	genesis := []byte(`{"params":{"powDifficulty":2}}`)
	users := []*testUser{newUser(t, "alice"), newUser(t, "bob")}
	var txs [][]byte
	for _, u := range users {
		txs = append(txs, sign(t, u.registerBody(t, 2), u.key))
	}
	rot := sign(t, users[0].rotateBody(t, 1), users[0].key)
	val, added := newNode(t, true), newKey(t)
	block3 := nodeBlock(t, users[0], val, added)
	dirA, dirB := t.TempDir(), t.TempDir()
	var hashes [2][][]byte
	for i, dir := range []string{dirA, dirB} {
		a := openTestApp(t, dir)
		if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: testChain, InitialHeight: 1, AppStateBytes: genesis,
			Validators: []abci.ValidatorUpdate{abci.Ed25519ValidatorUpdate(val.valPub(), 10)}}); err != nil {
			t.Fatal(err)
		}
		r1 := runBlock(t, a, 1, txs...)
		r2 := runBlock(t, a, 2, rot, []byte("junk"))
		r3 := runBlock(t, a, 3, block3...)
		for _, r := range append(r1.TxResults, r3.TxResults...) {
			if r.Code != CodeOK {
				t.Fatalf("block 1 or 3 tx: %d %s", r.Code, r.Log)
			}
		}
		if r2.TxResults[0].Code != CodeOK || r2.TxResults[1].Code != CodeDecode {
			t.Fatalf("block 2 results: %v", r2.TxResults)
		}
		if len(r3.ValidatorUpdates) != 1 || !bytes.Equal(r3.ValidatorUpdates[0].PubKey.GetEd25519(), added) || r3.ValidatorUpdates[0].Power != 7 {
			t.Fatalf("block 3 validator updates: %v", r3.ValidatorUpdates)
		}
		hashes[i] = [][]byte{r1.AppHash, r2.AppHash, r3.AppHash}
		// Home nodes were set by the registrations (block 1) and alice's
		// SetHomeNodes (block 3); the rotation and the junk set none.
		for since, want := range map[int64]string{0: "[alice bob alice]", 1: "[alice]", 2: "[alice]", 3: "[]"} {
			if got, ok := a.HomeChanges(since); !ok || fmt.Sprint(got) != want {
				t.Fatalf("HomeChanges(%d) = %v %v, want %s", since, got, ok, want)
			}
		}
		a.Close()
	}
	for h := range hashes[0] {
		if !bytes.Equal(hashes[0][h], hashes[1][h]) {
			t.Fatalf("app hashes diverge at height %d", h+1)
		}
	}
	if bytes.Equal(hashes[0][0], hashes[0][1]) || bytes.Equal(hashes[0][1], hashes[0][2]) {
		t.Fatal("app hash did not change with the state")
	}
	checkReopened(t, dirA, hashes[0][2], rot)
}

// checkReopened opens the app of TestAppDeterministicAndDurable again.
func checkReopened(t *testing.T, dir string, hash, rot []byte) {
	ctx := context.Background()
	a := openTestApp(t, dir)
	defer a.Close()
	info, err := a.Info(ctx, &abci.RequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.HomeChanges(2); ok { // the blocks before the reopen are not remembered
		t.Fatal("HomeChanges(2) after a reopen at height 3 claims to know")
	}
	if got, ok := a.HomeChanges(3); !ok || len(got) != 0 {
		t.Fatalf("HomeChanges(3) after a reopen = %v %v", got, ok)
	}
	if info.LastBlockHeight != 3 || !bytes.Equal(info.LastBlockAppHash, hash) {
		t.Fatalf("after reopen: height %d hash %X", info.LastBlockHeight, info.LastBlockAppHash)
	}
	q, _ := a.Query(ctx, &abci.RequestQuery{Path: "/account/ALICE"})
	var acct tokenimv1.Account
	if q.Code != CodeOK || codec.Unmarshal(q.Value, &acct, 1<<16) != nil || acct.Sequence != 3 || acct.KeyEvents != 2 || len(acct.HomeNodes) != 2 {
		t.Fatalf("query after reopen: code %d %s, %v", q.Code, q.Log, &acct)
	}
	if q, _ := a.Query(ctx, &abci.RequestQuery{Path: "/account/nobody"}); q.Code != CodeUnknownAccount {
		t.Fatalf("query unknown: %d", q.Code)
	}
	// CheckTx reads committed state: a replay of the rotation is refused.
	if c, _ := a.CheckTx(ctx, &abci.RequestCheckTx{Tx: rot}); c.Code != CodeBadSequence {
		t.Fatalf("CheckTx replay: %d %s", c.Code, c.Log)
	}
}

// nodeBlock registers val and a full node, makes them alice's home nodes,
// and has val, the only validator, add validator key added with power 7.
func nodeBlock(t *testing.T, alice *testUser, val *testNode, added []byte) [][]byte {
	full := newNode(t, false)
	return [][]byte{
		val.register(t, 0, "https://val.example"), full.register(t, 0, "http://full.example:8080"),
		sign(t, &tokenimv1.TxBody{ChainId: testChain, Signer: "alice", Sequence: 2,
			Msg: &tokenimv1.TxBody_SetHomeNodes{SetHomeNodes: &tokenimv1.SetHomeNodes{NodeIds: []string{full.id, val.id}}}}, alice.key),
		val.propose(t, 1, added, 7),
	}
}

// InitChain's validators vote through FinalizeBlock: the change that gets
// 3 of 4 approvals is returned to CometBFT in ValidatorUpdates.
func TestAppValidatorUpdates(t *testing.T) {
	ctx := context.Background()
	a := openTestApp(t, t.TempDir())
	defer a.Close()
	var v []*testNode
	var genesisVals []abci.ValidatorUpdate
	var regs [][]byte
	for i := 0; i < 4; i++ {
		n := newNode(t, true)
		v = append(v, n)
		genesisVals = append(genesisVals, abci.Ed25519ValidatorUpdate(n.valPub(), 10))
		regs = append(regs, n.register(t, 0, "https://v.example"))
	}
	if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: testChain, InitialHeight: 1, Validators: genesisVals}); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.CheckTx(ctx, &abci.RequestCheckTx{Tx: regs[0]}); c.Code != CodeOK {
		t.Fatalf("CheckTx against genesis: %d %s", c.Code, c.Log)
	}
	runBlock(t, a, 1, regs...)
	added := newKey(t)
	r2 := runBlock(t, a, 2, v[0].propose(t, 1, added, 10), v[1].approve(t, 1, 1))
	if len(r2.ValidatorUpdates) != 0 || r2.TxResults[0].Code != CodeOK || r2.TxResults[1].Code != CodeOK {
		t.Fatalf("block 2: %v %v", r2.TxResults, r2.ValidatorUpdates)
	}
	r3 := runBlock(t, a, 3, v[2].approve(t, 1, 1), v[3].approve(t, 1, 1))
	if r3.TxResults[0].Code != CodeOK || r3.TxResults[1].Code != CodeUnknownProposal {
		t.Fatalf("block 3: %v", r3.TxResults)
	}
	if len(r3.ValidatorUpdates) != 1 || !bytes.Equal(r3.ValidatorUpdates[0].PubKey.GetEd25519(), added) || r3.ValidatorUpdates[0].Power != 10 {
		t.Fatalf("block 3 updates: %v", r3.ValidatorUpdates)
	}
	var set tokenimv1.ValidatorSet
	mustQuery(t, a, "/validators", &set)
	if len(set.Validators) != 5 || set.LastProposalId != 1 {
		t.Fatalf("/validators: %v", &set)
	}
	var nodes tokenimv1.ListNodesResponse
	mustQuery(t, a, "/nodes", &nodes)
	if len(nodes.Nodes) != 4 || nodes.Height != 3 {
		t.Fatalf("/nodes: %v", &nodes)
	}
	var rec tokenimv1.NodeRecord
	mustQuery(t, a, "/node/"+v[1].id, &rec)
	if rec.NodeId != v[1].id || rec.Sequence != 2 {
		t.Fatalf("/node: %v", &rec)
	}
	for _, c := range []struct {
		path string
		code uint32
	}{{"/proposal/1", CodeUnknownProposal}, {"/node/nope", CodeInvalidNode}, {"/proposal/x", CodeDecode}} {
		if q, _ := a.Query(ctx, &abci.RequestQuery{Path: c.path}); q.Code != c.code {
			t.Errorf("%s: code %d, want %d", c.path, q.Code, c.code)
		}
	}
}

func mustQuery(t *testing.T, a *App, path string, m proto.Message) {
	t.Helper()
	q, _ := a.Query(context.Background(), &abci.RequestQuery{Path: path})
	if q.Code != CodeOK {
		t.Fatalf("%s: %d %s", path, q.Code, q.Log)
	}
	if err := codec.Unmarshal(q.Value, m, 1<<20); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestBlockUpdates(t *testing.T) {
	k1, k2, k3 := []byte{1}, []byte{2}, []byte{3}
	v := func(k []byte, p int64) *tokenimv1.Validator { return &tokenimv1.Validator{ValidatorKey: k, Power: p} }
	before := []*tokenimv1.Validator{v(k1, 10), v(k2, 10)}
	cases := []struct {
		name    string
		changes []*tokenimv1.Validator
		want    []*tokenimv1.Validator
	}{
		{"none", nil, nil},
		{"one", []*tokenimv1.Validator{v(k3, 5)}, []*tokenimv1.Validator{v(k3, 5)}},
		{"last power wins, sorted", []*tokenimv1.Validator{v(k2, 1), v(k1, 4), v(k2, 2)}, []*tokenimv1.Validator{v(k1, 4), v(k2, 2)}},
		{"added then removed", []*tokenimv1.Validator{v(k3, 5), v(k3, 0)}, nil},
		{"changed back", []*tokenimv1.Validator{v(k1, 3), v(k1, 10)}, nil},
		{"removed", []*tokenimv1.Validator{v(k2, 0)}, []*tokenimv1.Validator{v(k2, 0)}},
	}
	for _, c := range cases {
		got := blockUpdates(before, c.changes)
		if len(got) != len(c.want) {
			t.Fatalf("%s: %v", c.name, got)
		}
		for i, w := range c.want {
			if !bytes.Equal(got[i].PubKey.GetEd25519(), w.ValidatorKey) || got[i].Power != w.Power {
				t.Fatalf("%s: %v", c.name, got)
			}
		}
	}
}

// A block that is finalized but not committed (crash) leaves the saved
// state untouched, so CometBFT can replay it.
func TestAppUncommittedBlockIsNotSaved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := openTestApp(t, dir)
	a.InitChain(ctx, &abci.RequestInitChain{ChainId: testChain, InitialHeight: 1, AppStateBytes: []byte(`{"params":{"powDifficulty":0}}`)})
	runBlock(t, a, 1)
	u := newUser(t, "carol")
	if _, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: 2, Txs: [][]byte{sign(t, u.registerBody(t, 0), u.key)}}); err != nil {
		t.Fatal(err)
	}
	a.Close() // no Commit
	a = openTestApp(t, dir)
	defer a.Close()
	info, _ := a.Info(ctx, &abci.RequestInfo{})
	if info.LastBlockHeight != 1 {
		t.Fatalf("height after crash: %d", info.LastBlockHeight)
	}
	r, _ := a.Committed()
	if _, err := GetAccount(r, "carol"); err == nil {
		t.Fatal("an uncommitted registration survived")
	}
}

// HomeChanges remembers the last maxHomeChanges blocks that set home
// nodes; asked about earlier heights it says it does not know.
func TestHomeChangesForgetsOldBlocks(t *testing.T) {
	a := openTestApp(t, t.TempDir())
	defer a.Close()
	for h := int64(1); h <= maxHomeChanges+10; h++ {
		a.homesBlock = []string{fmt.Sprint("u", h)}
		a.recordHomes(h)
	}
	if _, ok := a.HomeChanges(9); ok { // height 10 was forgotten
		t.Fatal("HomeChanges(9) after block 10 was forgotten claims to know")
	}
	if got, ok := a.HomeChanges(10); !ok || len(got) != maxHomeChanges {
		t.Fatalf("HomeChanges(10) = %d handles, %v", len(got), ok)
	}
	got, ok := a.HomeChanges(maxHomeChanges + 8)
	if !ok || fmt.Sprint(got) != fmt.Sprintf("[u%d u%d]", maxHomeChanges+9, maxHomeChanges+10) {
		t.Fatalf("HomeChanges(last 2) = %v %v", got, ok)
	}
}

// CometBFT's peer filters ask the app: every peer is let in until the node
// stops (RefusePeers), then none.
func TestPeerFilter(t *testing.T) {
	a := openTestApp(t, t.TempDir())
	ctx := context.Background()
	for _, path := range []string{"/p2p/filter/addr/127.0.0.1:26656", "/p2p/filter/id/0fdff981de51e16f89c6b2906456c7d005cfe5fc"} {
		if res, err := a.Query(ctx, &abci.RequestQuery{Path: path}); err != nil || res.IsErr() {
			t.Fatalf("%s while running: %v %v", path, res, err)
		}
	}
	a.RefusePeers()
	for _, path := range []string{"/p2p/filter/addr/127.0.0.1:26656", "/p2p/filter/id/0fdff981de51e16f89c6b2906456c7d005cfe5fc"} {
		if res, err := a.Query(ctx, &abci.RequestQuery{Path: path}); err != nil || !res.IsErr() {
			t.Fatalf("%s while stopping: %v %v", path, res, err)
		}
	}
}
