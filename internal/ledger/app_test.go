package ledger

import (
	"bytes"
	"context"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
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

// Two apps fed the same blocks agree on every app hash; the state survives
// a reopen, and Info reports it for CometBFT's handshake.
func TestAppDeterministicAndDurable(t *testing.T) {
	ctx := context.Background()
	genesis := []byte(`{"params":{"powDifficulty":2}}`)
	users := []*testUser{newUser(t, "alice"), newUser(t, "bob")}
	var txs [][]byte
	for _, u := range users {
		txs = append(txs, sign(t, u.registerBody(t, 2), u.key))
	}
	rot := sign(t, users[0].rotateBody(t, 1), users[0].key)
	dirA, dirB := t.TempDir(), t.TempDir()
	var hashes [2][][]byte
	for i, dir := range []string{dirA, dirB} {
		a := openTestApp(t, dir)
		if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: testChain, InitialHeight: 1, AppStateBytes: genesis}); err != nil {
			t.Fatal(err)
		}
		r1 := runBlock(t, a, 1, txs...)
		r2 := runBlock(t, a, 2, rot, []byte("junk"))
		for _, r := range r1.TxResults {
			if r.Code != CodeOK {
				t.Fatalf("block 1 tx: %d %s", r.Code, r.Log)
			}
		}
		if r2.TxResults[0].Code != CodeOK || r2.TxResults[1].Code != CodeDecode {
			t.Fatalf("block 2 results: %v", r2.TxResults)
		}
		hashes[i] = [][]byte{r1.AppHash, r2.AppHash}
		a.Close()
	}
	for h := range hashes[0] {
		if !bytes.Equal(hashes[0][h], hashes[1][h]) {
			t.Fatalf("app hashes diverge at height %d", h+1)
		}
	}
	if bytes.Equal(hashes[0][0], hashes[0][1]) {
		t.Fatal("app hash did not change with the state")
	}
	a := openTestApp(t, dirA)
	defer a.Close()
	info, err := a.Info(ctx, &abci.RequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if info.LastBlockHeight != 2 || !bytes.Equal(info.LastBlockAppHash, hashes[0][1]) {
		t.Fatalf("after reopen: height %d hash %X", info.LastBlockHeight, info.LastBlockAppHash)
	}
	q, _ := a.Query(ctx, &abci.RequestQuery{Path: "/account/ALICE"})
	var acct tokenimv1.Account
	if q.Code != CodeOK || codec.Unmarshal(q.Value, &acct, 1<<16) != nil || acct.Sequence != 2 || acct.KeyEvents != 2 {
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
