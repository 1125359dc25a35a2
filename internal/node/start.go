package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	cfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	rpccore "github.com/cometbft/cometbft/rpc/core"
	"github.com/cometbft/cometbft/types"
	"github.com/spf13/viper"
	"github.com/tokenim/tokenim/internal/blob"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/nodeauth"
	"github.com/tokenim/tokenim/internal/relay"
)

// StartOptions configure Start.
type StartOptions struct {
	// Addrs override the configured listen addresses ("host:0" picks a port).
	Addrs
	// Log receives TokenIM's logs (nil: discard). CometBFT logs errors to
	// CometLog (nil: discard).
	Log      *slog.Logger
	CometLog io.Writer
}

// Node is a running TokenIM node.
type Node struct {
	home     string
	cometCfg *cfg.Config
	settings Settings
	// nodeKey is the CometBFT node key: it signs this node's transactions
	// and peer requests.
	nodeKey      ed25519.PrivateKey
	validatorKey []byte
	// validatorProof shows the node holds its validator key (RegisterNode).
	validatorProof []byte
	peers          *peerClients
	reg            registryCache
	gate           groupGate
	rpcEnv         *rpccore.Environment
	stopCluster    context.CancelFunc
	log            *slog.Logger
	comet          *nm.Node
	app            *ledger.App
	relay          *relay.Store
	blobs          *blob.Store
	api            *http.Server
	apiLn          net.Listener
	apiURL         string
	chainID        string
	nodeID         string
	metrics        *metrics
	auth           *nodeauth.Authenticator
	stopped        chan struct{}
	draining       chan struct{} // closed when Stop begins: live streams end cleanly
	prune          pruner        // group mailboxes to prune (groupmailbox.go)
	drainOnce      sync.Once
	known          sync.Map     // handles known to be registered
	knownGroups    sync.Map     // groups known to exist (groups are never deleted)
	groupCache     groupRecords // decoded group records (groupmailbox.go)
	groupPulls     sync.Map     // group mailbox → time of its last pull (groupmailbox.go)
	logGrew        chan struct{}
	cometLog       *gatedWriter
	// broadcasts bounds the transactions waiting for a block.
	broadcasts chan struct{}
	// committedAt is when this node last committed a block (unix ns).
	committedAt atomic.Int64
	dbMu        sync.Mutex
	dbs         []dbm.DB // every CometBFT database opened
}

// Start opens the node home and starts consensus, the relay and the API.
func Start(ctx context.Context, home string, o StartOptions) (*Node, error) {
	settings, err := readSettings(home)
	if err != nil {
		return nil, err
	}
	c, err := loadCometConfig(home)
	if err != nil {
		return nil, err
	}
	if o.P2P != "" {
		c.P2P.ListenAddress = tcpAddr(o.P2P)
	}
	if o.RPC != "" {
		c.RPC.ListenAddress = tcpAddr(o.RPC)
	}
	if o.API != "" {
		settings.APIAddr = o.API
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{home: home, cometCfg: c, settings: settings, log: log, stopped: make(chan struct{}), draining: make(chan struct{}), broadcasts: make(chan struct{}, maxPendingBroadcasts)}
	if err := n.open(ctx, c, o.CometLog); err != nil {
		n.closeStores()
		return nil, err
	}
	if err := n.serveAPI(settings.APIAddr); err != nil {
		n.Stop()
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.Background())
	n.stopCluster = cancel
	go n.cluster(cctx)
	go n.sweeper(cctx)
	go n.anchorer(cctx)
	go n.rateSaver(cctx)
	return n, nil
}

func loadCometConfig(home string) (*cfg.Config, error) {
	c := cfg.DefaultConfig()
	path := filepath.Join(Dir(home), "config", "config.toml")
	v := viper.New()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := v.Unmarshal(c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	c.SetRoot(Dir(home))
	c.FilterPeers = true // homes made before it was set too
	if err := c.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (n *Node) open(ctx context.Context, c *cfg.Config, cometLog io.Writer) error {
	genesis, err := nm.DefaultGenesisDocProviderFunc(c)()
	if err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	n.chainID = genesis.ChainID
	dataDir := filepath.Join(c.RootDir, "data")
	if n.app, err = ledger.OpenApp(dataDir, n.chainID, n.log); err != nil {
		return err
	}
	n.committedAt.Store(time.Now().UnixNano())
	n.app.OnCommit(func(int64) { n.committedAt.Store(time.Now().UnixNano()) })
	if n.blobs, err = blob.Open(filepath.Join(dataDir, "blobs")); err != nil {
		return err
	}
	n.logGrew = make(chan struct{}, 1)
	if n.relay, err = relay.Open(relay.Options{Dir: filepath.Join(dataDir, "relay"), Logger: n.log, OnLogGrowth: n.noteLogGrowth}); err != nil {
		return fmt.Errorf("open relay store: %w", err)
	}
	if err := n.gate.load(filepath.Join(dataDir, rateFile), time.Now(), maxSavedWindow); err != nil {
		n.log.Warn("rate windows not restored", "err", err) // they start empty, as after a crash
	}
	nodeKey, err := p2p.LoadNodeKey(c.NodeKeyFile())
	if err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	n.nodeID = string(nodeKey.ID())
	n.nodeKey = ed25519.PrivateKey(nodeKey.PrivKey.Bytes())
	n.peers = newPeerClients(n.nodeID, n.nodeKey)
	pv := privval.LoadFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
	n.validatorKey = pv.Key.PubKey.Bytes()
	n.validatorProof = ledger.SignValidatorProof(n.chainID, n.nodeID, ed25519.PrivateKey(pv.Key.PrivKey.Bytes()))
	logger := cmtlog.NewNopLogger()
	if cometLog != nil {
		n.cometLog = &gatedWriter{w: cometLog}
		logger = cmtlog.NewFilter(cmtlog.NewTMLogger(cmtlog.NewSyncWriter(n.cometLog)), cmtlog.AllowError())
	}
	n.comet, err = nm.NewNodeWithContext(ctx, c, pv, nodeKey, proxy.NewLocalClientCreator(n.app),
		func() (*types.GenesisDoc, error) { return genesis, nil }, n.dbProvider,
		nm.DefaultMetricsProvider(c.Instrumentation), logger)
	if err != nil {
		return fmt.Errorf("start consensus: %w", err)
	}
	if err := n.comet.Start(); err != nil {
		return fmt.Errorf("start consensus: %w", err)
	}
	if n.rpcEnv, err = n.comet.ConfigureRPC(); err != nil {
		return fmt.Errorf("consensus RPC environment: %w", err)
	}
	n.metrics = newMetrics(n)
	n.auth = nodeauth.New(n.nodeID, time.Now)
	return nil
}

// gatedWriter passes writes through until closed.
type gatedWriter struct {
	w      io.Writer
	closed atomic.Bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if g.closed.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}

// dbProvider opens CometBFT's databases and remembers them for Stop.
func (n *Node) dbProvider(ctx *cfg.DBContext) (dbm.DB, error) {
	db, err := cfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	sdb := &closableDB{DB: db}
	n.dbMu.Lock()
	n.dbs = append(n.dbs, sdb)
	n.dbMu.Unlock()
	return sdb, nil
}

// closableDB answers reads after Close with "not found" instead of an
// error: CometBFT v0.38's per-peer consensus routines can wake from a sleep
// and read the block store after the node closed it, and its store panics
// on a read error, which would take the whole process down at shutdown.
type closableDB struct {
	dbm.DB
	closed atomic.Bool
}

func (d *closableDB) Get(key []byte) ([]byte, error) {
	if d.closed.Load() {
		return nil, nil
	}
	v, err := d.DB.Get(key)
	if err != nil && d.closed.Load() {
		return nil, nil
	}
	return v, err
}

func (d *closableDB) Has(key []byte) (bool, error) {
	if d.closed.Load() {
		return false, nil
	}
	ok, err := d.DB.Has(key)
	if err != nil && d.closed.Load() {
		return false, nil
	}
	return ok, err
}

func (d *closableDB) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.DB.Close()
}

// APIURL is the base URL of the node API.
func (n *Node) APIURL() string { return n.apiURL }

// ChainID is the chain this node follows.
func (n *Node) ChainID() string { return n.chainID }

// NodeID is the node's p2p id (hash of its node key).
func (n *Node) NodeID() string { return n.nodeID }

// Height is the latest committed height.
func (n *Node) Height() int64 { _, h := n.app.Committed(); return h }

// CatchingUp reports whether the node is still fetching blocks it missed
// (block sync) rather than taking part in consensus.
func (n *Node) CatchingUp() bool { return n.comet.ConsensusReactor().WaitSync() }

// Done is closed when the node has stopped.
func (n *Node) Done() <-chan struct{} { return n.stopped }

// Stop stops the API, consensus and the stores, in that order.
func (n *Node) Stop() error {
	select {
	case <-n.stopped:
		return nil
	default:
	}
	var errs []error
	if n.app != nil {
		n.app.RefusePeers() // see RefusePeers
	}
	if n.stopCluster != nil {
		n.stopCluster()
	}
	n.drainOnce.Do(func() { close(n.draining) })
	if n.api != nil {
		// Receive streams end at once (their clients then close their
		// AckStreams); what is still open after 3 s is cut.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		n.api.Shutdown(ctx)
		cancel()
		n.api.Close()
	}
	if n.cometLog != nil {
		n.cometLog.closed.Store(true) // listeners report "closed" errors while stopping
	}
	if n.comet != nil && n.comet.IsRunning() {
		if err := n.comet.Stop(); err != nil {
			errs = append(errs, err)
		}
		n.comet.Wait()
	}
	// CometBFT v0.38 does not close every database it opened (the tx index
	// stays open), so a restart in the same process would find it locked.
	n.dbMu.Lock()
	for _, db := range n.dbs {
		db.Close() // a second Close of an already closed DB only errs
	}
	n.dbs = nil
	n.dbMu.Unlock()
	if err := n.gate.save(filepath.Join(n.DataDir(), rateFile)); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, n.closeStores())
	close(n.stopped)
	return errors.Join(errs...)
}

func (n *Node) closeStores() error {
	var errs []error
	if n.relay != nil {
		errs = append(errs, n.relay.Close())
	}
	if n.blobs != nil {
		errs = append(errs, n.blobs.Close())
	}
	if n.app != nil {
		errs = append(errs, n.app.Close())
	}
	return errors.Join(errs...)
}

// DataDir is where the node keeps its data (for tests that inspect it).
func (n *Node) DataDir() string { return filepath.Join(Dir(n.home), "data") }
