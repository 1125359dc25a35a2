package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cosmos/iavl"
	iavldb "github.com/cosmos/iavl/db"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"google.golang.org/protobuf/encoding/protojson"
)

// AppVersion is the application protocol version reported to CometBFT.
const AppVersion = 1

// App is the ABCI application: the Machine over an IAVL tree.
type App struct {
	abci.BaseApplication
	chainID string
	machine *Machine
	db      iavldb.DB
	tree    *iavl.MutableTree
	log     *slog.Logger

	mu        sync.RWMutex
	committed *iavl.ImmutableTree // latest saved version, read by queries and CheckTx
	genesis   Reader              // the genesis state, until the first commit
	onCommit  []func(height int64)
}

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
	a := &App{chainID: chainID, machine: NewMachine(), db: db, tree: tree, log: log}
	if err := a.snapshot(tree.Version()); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

// Close closes the state database.
func (a *App) Close() error { return a.db.Close() }

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
	return a.committed, a.committed.Version()
}

// memKV is a small in-memory KV (the genesis state before block 1).
type memKV map[string][]byte

func (m memKV) Get(k []byte) ([]byte, error) { return m[string(k)], nil }
func (m memKV) Set(k, v []byte) error        { m[string(k)] = append([]byte(nil), v...); return nil }

type emptyReader struct{}

func (emptyReader) Get([]byte) ([]byte, error) { return nil, nil }

// readOnly turns a Reader into a KV whose writes fail.
type readOnly struct{ Reader }

func (readOnly) Set([]byte, []byte) error { return errors.New("ledger: write in a read-only check") }

// treeKV adapts the IAVL working tree.
type treeKV struct{ t *iavl.MutableTree }

func (k treeKV) Get(key []byte) ([]byte, error) { return k.t.Get(key) }
func (k treeKV) Set(key, v []byte) error        { _, err := k.t.Set(key, v); return err }

// Info tells CometBFT where the state is, for the handshake replay.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	return &abci.ResponseInfo{
		Data: "tokenim", Version: "tokenim-ledger", AppVersion: AppVersion,
		LastBlockHeight: a.tree.Version(), LastBlockAppHash: a.tree.Hash(),
	}, nil
}

// InitChain writes the genesis state.
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
	if err := InitGenesis(treeKV{a.tree}, &g); err != nil {
		return nil, err
	}
	// Until block 1 is committed, CheckTx and queries see the genesis state.
	gen := memKV{}
	if err := InitGenesis(gen, &g); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.genesis = gen
	a.mu.Unlock()
	return &abci.ResponseInitChain{AppHash: a.tree.WorkingHash()}, nil
}

// CheckTx validates a transaction against the committed state.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	r, h := a.Committed()
	err := a.machine.Check(readOnly{r}, Block{ChainID: a.chainID, Height: h + 1}, req.Tx)
	return &abci.ResponseCheckTx{Code: Code(err), Log: errLog(err)}, nil
}

// FinalizeBlock applies a block's transactions to the working tree.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	b := Block{ChainID: a.chainID, Height: req.Height, TimeMs: req.Time.UnixMilli()}
	res := make([]*abci.ExecTxResult, len(req.Txs))
	for i, tx := range req.Txs {
		err := a.machine.Deliver(treeKV{a.tree}, b, tx)
		if Code(err) == CodeInternal {
			return nil, fmt.Errorf("ledger: height %d tx %d: %w", req.Height, i, err)
		}
		res[i] = &abci.ExecTxResult{Code: Code(err), Log: errLog(err)}
	}
	return &abci.ResponseFinalizeBlock{TxResults: res, AppHash: a.tree.WorkingHash()}, nil
}

// Commit saves the working tree as the version of the finalized block.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	_, version, err := a.tree.SaveVersion()
	if err != nil {
		return nil, fmt.Errorf("ledger: save version: %w", err)
	}
	if err := a.snapshot(version); err != nil {
		return nil, err
	}
	a.mu.RLock()
	hooks := append([]func(int64){}, a.onCommit...)
	a.mu.RUnlock()
	for _, fn := range hooks {
		fn(version)
	}
	return &abci.ResponseCommit{}, nil
}

// Query answers /account/<handle> and /params (canonical protobuf) and
// /history/<handle> (JSON list of KeyEvents) from the committed state.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	r, h := a.Committed()
	val, err := a.query(r, req.Path)
	if err != nil {
		return &abci.ResponseQuery{Code: Code(err), Log: errLog(err), Height: h}, nil
	}
	return &abci.ResponseQuery{Key: []byte(req.Path), Value: val, Height: h}, nil
}

func (a *App) query(r Reader, path string) ([]byte, error) {
	if len(path) > MaxQueryPath {
		return nil, fmt.Errorf("%w: query path too long", ErrDecode)
	}
	switch {
	case strings.HasPrefix(path, "/account/"):
		h, err := NormalizeHandle(strings.TrimPrefix(path, "/account/"))
		if err != nil {
			return nil, err
		}
		acct, err := GetAccount(r, h)
		if err != nil {
			return nil, err
		}
		return codec.Marshal(acct)
	case path == "/params":
		p, err := GetParams(r)
		if err != nil {
			return nil, err
		}
		return codec.Marshal(p)
	case strings.HasPrefix(path, "/history/"):
		h, err := NormalizeHandle(strings.TrimPrefix(path, "/history/"))
		if err != nil {
			return nil, err
		}
		hist, err := GetKeyHistory(r, h)
		if err != nil {
			return nil, err
		}
		return json.Marshal(hist)
	}
	return nil, fmt.Errorf("%w: unknown query path %q", ErrDecode, path)
}

func errLog(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
