package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cosmos/iavl"
	iavldb "github.com/cosmos/iavl/db"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// AppVersion is the application protocol version reported to CometBFT.
const AppVersion = 1

// App is the ABCI application: the Machine over an IAVL tree.
type App struct {
	abci.BaseApplication
	refusePeers atomic.Bool // the node is stopping: no new peer connections (Query)
	chainID     string
	machine     *Machine
	db          iavldb.DB
	tree        *iavl.MutableTree
	log         *slog.Logger

	mu        sync.RWMutex
	committed *iavl.ImmutableTree // latest saved version, read by queries and CheckTx
	// stateMu is held exclusively while a block changes or saves the tree,
	// shared by readers of the committed state (lockedReader).
	stateMu  sync.RWMutex
	genesis  Reader // the genesis state, until the first commit
	onCommit []func(height int64)

	// Accounts whose home nodes changed, per committed height (a.mu):
	// complete for the heights after homesFrom.
	homesBlock  []string // the block being finalized (stateMu)
	homeChanges []homeChange
	homesFrom   int64
}

// homeChange: the accounts whose home nodes a block set.
type homeChange struct {
	height  int64
	handles []string
}

// maxHomeChanges bounds the blocks App.HomeChanges remembers.
const maxHomeChanges = 256

// OpenApp opens (or creates) the application state in dir.
func OpenApp(dir, chainID string, log *slog.Logger) (*App, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := iavldb.NewGoLevelDB("ledger", dir)
	if err != nil {
		return nil, fmt.Errorf("open ledger db: %w", err)
	}
	tree := iavl.NewMutableTree(db, 10_000, false, iavl.NewNopLogger(), iavl.SyncOption(true))
	if _, err := tree.Load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("load ledger state: %w", err)
	}
	a := &App{chainID: chainID, machine: NewMachine(), db: db, tree: tree, log: log, homesFrom: tree.Version()}
	if err := a.snapshot(tree.Version()); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

// Close closes the state database.
func (a *App) Close() error { return a.db.Close() }

// RefusePeers makes CometBFT's peer filters refuse every new connection
// from now on. A stopping node calls it first: CometBFT v0.38 stops its
// switch before its transport, and a peer that reconnects in between
// completes its handshake, while the stopping switch neither starts nor
// closes that connection, so the peer holds a dead connection for up to its
// ping timeout (~105 s) and refuses the node's next start as a duplicate.
func (a *App) RefusePeers() { a.refusePeers.Store(true) }

// OnCommit registers fn to run after each committed block (outside locks).
func (a *App) OnCommit(fn func(height int64)) {
	a.mu.Lock()
	a.onCommit = append(a.onCommit, fn)
	a.mu.Unlock()
}

func (a *App) snapshot(version int64) error {
	var imm *iavl.ImmutableTree
	if version > 0 {
		var err error
		if imm, err = a.tree.GetImmutable(version); err != nil {
			return fmt.Errorf("ledger: open version %d: %w", version, err)
		}
	}
	a.mu.Lock()
	a.committed = imm
	a.mu.Unlock()
	return nil
}

// recordHomes remembers the accounts whose home nodes the block committed
// at height set (stateMu held).
func (a *App) recordHomes(height int64) {
	homes := a.homesBlock
	a.homesBlock = nil
	if len(homes) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.homeChanges) == maxHomeChanges {
		a.homesFrom = a.homeChanges[0].height
		a.homeChanges = slices.Delete(a.homeChanges, 0, 1)
	}
	a.homeChanges = append(a.homeChanges, homeChange{height, homes})
}

// HomeChanges returns the accounts whose home nodes were set in the
// blocks committed after height since; ok is false when those blocks are
// not all remembered (the caller must assume any account changed).
func (a *App) HomeChanges(since int64) (handles []string, ok bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if since < a.homesFrom {
		return nil, false
	}
	for _, c := range a.homeChanges {
		if c.height > since {
			handles = append(handles, c.handles...)
		}
	}
	return handles, true
}

// Committed returns a reader of the latest committed state and its height;
// the reader is nil before the first block.
func (a *App) Committed() (Reader, int64) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.committed == nil {
		if a.genesis != nil {
			return a.genesis, 0
		}
		return emptyReader{}, 0
	}
	return lockedReader{a: a, t: a.committed}, a.committed.Version()
}

// lockedReader reads the committed tree under stateMu: IAVL's node
// database is shared with the working tree, and its caches and version
// bookkeeping are not safe to read while a block writes or saves.
type lockedReader struct {
	a *App
	t *iavl.ImmutableTree
}

func (r lockedReader) Get(key []byte) ([]byte, error) {
	r.a.stateMu.RLock()
	defer r.a.stateMu.RUnlock()
	return r.t.Get(key)
}

// memKV is a small in-memory KV (the genesis state before block 1).
type memKV map[string][]byte

func (m memKV) Get(k []byte) ([]byte, error) { return m[string(k)], nil }
func (m memKV) Set(k, v []byte) error        { m[string(k)] = append([]byte(nil), v...); return nil }
func (m memKV) Delete(k []byte) error        { delete(m, string(k)); return nil }

type emptyReader struct{}

func (emptyReader) Get([]byte) ([]byte, error) { return nil, nil }

// readOnly turns a Reader into a KV whose writes fail.
type readOnly struct{ Reader }

func (readOnly) Set([]byte, []byte) error { return errors.New("ledger: write in a read-only check") }
func (readOnly) Delete([]byte) error      { return errors.New("ledger: write in a read-only check") }

// treeKV adapts the IAVL working tree.
type treeKV struct{ t *iavl.MutableTree }

func (k treeKV) Get(key []byte) ([]byte, error) { return k.t.Get(key) }
func (k treeKV) Set(key, v []byte) error        { _, err := k.t.Set(key, v); return err }
func (k treeKV) Delete(key []byte) error        { _, _, err := k.t.Remove(key); return err }

// Info tells CometBFT where the state is, for the handshake replay.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	return &abci.ResponseInfo{
		Data: "tokenim", Version: "tokenim-ledger", AppVersion: AppVersion,
		LastBlockHeight: a.tree.Version(), LastBlockAppHash: a.tree.Hash(),
	}, nil
}

// InitChain writes the genesis state: the parameters of app_state and
// CometBFT's genesis validators.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	if req.ChainId != a.chainID {
		return nil, fmt.Errorf("ledger: genesis chain id %q, app configured for %q", req.ChainId, a.chainID)
	}
	if req.InitialHeight > 1 {
		a.tree.SetInitialVersion(uint64(req.InitialHeight))
	}
	var g tokenimv1.GenesisState
	if len(req.AppStateBytes) > 0 {
		if err := protojson.Unmarshal(req.AppStateBytes, &g); err != nil {
			return nil, fmt.Errorf("ledger: genesis app_state: %w", err)
		}
	}
	vals := make([]*tokenimv1.Validator, 0, len(req.Validators))
	for _, v := range req.Validators {
		key := v.PubKey.GetEd25519()
		if key == nil {
			return nil, fmt.Errorf("ledger: genesis validator key %v is not Ed25519", v.PubKey)
		}
		vals = append(vals, &tokenimv1.Validator{ValidatorKey: key, Power: v.Power})
	}
	if err := initState(treeKV{a.tree}, &g, vals); err != nil {
		return nil, err
	}
	// Until block 1 is committed, CheckTx and queries see the genesis state.
	gen := memKV{}
	if err := initState(gen, &g, vals); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.genesis = gen
	a.mu.Unlock()
	return &abci.ResponseInitChain{AppHash: a.tree.WorkingHash()}, nil
}

func initState(kv KV, g *tokenimv1.GenesisState, vals []*tokenimv1.Validator) error {
	if err := InitGenesis(kv, g); err != nil {
		return err
	}
	return InitValidators(kv, vals)
}

// CheckTx validates a transaction against the committed state.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	r, h := a.Committed()
	err := a.machine.Check(readOnly{r}, Block{ChainID: a.chainID, Height: h + 1}, req.Tx)
	return &abci.ResponseCheckTx{Code: Code(err), Log: errLog(err)}, nil
}

// FinalizeBlock applies a block's transactions to the working tree and
// returns the block's net validator set changes.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	b := Block{ChainID: a.chainID, Height: req.Height, TimeMs: req.Time.UnixMilli()}
	kv := treeKV{a.tree}
	before, err := GetValidators(kv)
	if err != nil {
		return nil, fmt.Errorf("ledger: height %d: %w", req.Height, err)
	}
	var changes []*tokenimv1.Validator
	res := make([]*abci.ExecTxResult, len(req.Txs))
	a.homesBlock = nil
	for i, tx := range req.Txs {
		r, err := a.machine.Deliver(kv, b, tx)
		if Code(err) == CodeInternal {
			return nil, fmt.Errorf("ledger: height %d tx %d: %w", req.Height, i, err)
		}
		if err == nil && r.HomesOf != "" {
			a.homesBlock = append(a.homesBlock, r.HomesOf)
		}
		changes = append(changes, r.Updates...)
		res[i] = &abci.ExecTxResult{Code: Code(err), Log: errLog(err)}
	}
	return &abci.ResponseFinalizeBlock{
		TxResults: res, ValidatorUpdates: blockUpdates(before.Validators, changes), AppHash: a.tree.WorkingHash(),
	}, nil
}

// blockUpdates merges a block's validator changes for CometBFT, which
// refuses two updates of one key and the removal of an absent validator:
// one update per key with its last power, none where the power ends as it
// began, sorted by key.
func blockUpdates(before, changes []*tokenimv1.Validator) []abci.ValidatorUpdate {
	var last []*tokenimv1.Validator // sorted by key
	for _, c := range changes {
		if i, found := findValidator(last, c.ValidatorKey); found {
			last[i] = c
		} else {
			last = slices.Insert(last, i, c)
		}
	}
	var out []abci.ValidatorUpdate
	for _, v := range last {
		if v.Power != validatorPower(before, v.ValidatorKey) {
			out = append(out, abci.Ed25519ValidatorUpdate(v.ValidatorKey, v.Power))
		}
	}
	return out
}

// Commit saves the working tree as the version of the finalized block.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	a.stateMu.Lock()
	_, version, err := a.tree.SaveVersion()
	if err == nil {
		a.recordHomes(version) // before the state at version can be read
		err = a.snapshot(version)
	}
	a.stateMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("ledger: save version %d: %w", version, err)
	}
	a.mu.RLock()
	hooks := append([]func(int64){}, a.onCommit...)
	a.mu.RUnlock()
	for _, fn := range hooks {
		fn(version)
	}
	return &abci.ResponseCommit{}, nil
}

func errLog(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
