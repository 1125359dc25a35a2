package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"google.golang.org/protobuf/encoding/protojson"
)

// Default listen addresses of `tokenim up` and `tokenim node init`.
const (
	DefaultAPIAddr = "127.0.0.1:8420"
	DefaultP2PAddr = "127.0.0.1:26656"
	DefaultRPCAddr = "127.0.0.1:26657"
)

// DefaultAPIURL is the URL clients use when none is configured.
const DefaultAPIURL = "http://" + DefaultAPIAddr

// ErrNotInitialized: the home has no node configuration.
var ErrNotInitialized = errors.New("node home not initialized")

// ErrAlreadyInitialized: Init on a home that has a node.
var ErrAlreadyInitialized = errors.New("node home already initialized")

// Addrs are a node's listen addresses (host:port). Empty fields keep the
// configured (or default) value.
type Addrs struct {
	API, P2P, RPC string
}

// InitOptions configure a new node home.
type InitOptions struct {
	Addrs
	ChainID       string // default: tokenim-<random>
	PowDifficulty uint32 // default ledger.DefaultPowDifficulty; set by tests
	// PowDifficultySet makes PowDifficulty 0 mean 0 (tests).
	PowDifficultySet bool
	Moniker          string
}

// Settings is config/tokenim.json.
type Settings struct {
	APIAddr string `json:"api_addr"`
	// AdvertiseURL is the API URL put in the node registry (default: the
	// URL of the listening address). Set it when the node is reached under
	// a host name.
	AdvertiseURL string `json:"advertise_url,omitempty"`
}

// Dir returns the node directory of a TokenIM home.
func Dir(home string) string { return filepath.Join(home, "node") }

func settingsPath(home string) string { return filepath.Join(Dir(home), "config", "tokenim.json") }

// Initialized reports whether home has a node.
func Initialized(home string) bool {
	_, err := os.Stat(settingsPath(home))
	return err == nil
}

// Init writes a new node home with a single-validator genesis.
func Init(home string, o InitOptions) error {
	if Initialized(home) {
		return fmt.Errorf("%w: %s", ErrAlreadyInitialized, Dir(home))
	}
	o.Addrs = withDefaults(o.Addrs, Addrs{API: DefaultAPIAddr, P2P: DefaultP2PAddr, RPC: DefaultRPCAddr})
	if o.ChainID == "" {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		o.ChainID = "tokenim-" + hex.EncodeToString(b[:])
	}
	if !o.PowDifficultySet && o.PowDifficulty == 0 {
		o.PowDifficulty = ledger.DefaultPowDifficulty
	}
	c := cometConfig(home, o.Addrs)
	if o.Moniker != "" {
		c.Moniker = o.Moniker
	}
	if err := os.MkdirAll(filepath.Join(c.RootDir, "config"), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(c.RootDir, "data"), 0o700); err != nil {
		return err
	}
	cfg.WriteConfigFile(filepath.Join(c.RootDir, "config", "config.toml"), c)
	pv := privval.LoadOrGenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
	if _, err := p2p.LoadOrGenNodeKey(c.NodeKeyFile()); err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	if err := writeGenesis(c.GenesisFile(), o, pv); err != nil {
		return err
	}
	return writeSettings(home, Settings{APIAddr: o.API})
}

func withDefaults(a, d Addrs) Addrs {
	if a.API == "" {
		a.API = d.API
	}
	if a.P2P == "" {
		a.P2P = d.P2P
	}
	if a.RPC == "" {
		a.RPC = d.RPC
	}
	return a
}

func writeGenesis(path string, o InitOptions, pv *privval.FilePV) error {
	pub, err := pv.GetPubKey()
	if err != nil {
		return err
	}
	app, err := protojson.Marshal(&tokenimv1.GenesisState{Params: &tokenimv1.Params{PowDifficulty: o.PowDifficulty}})
	if err != nil {
		return err
	}
	g := &types.GenesisDoc{
		GenesisTime:     time.Now().UTC(),
		ChainID:         o.ChainID,
		InitialHeight:   1,
		ConsensusParams: types.DefaultConsensusParams(),
		Validators:      []types.GenesisValidator{{Address: pub.Address(), PubKey: pub, Power: 10, Name: "node0"}},
		AppState:        json.RawMessage(app),
	}
	if err := g.ValidateAndComplete(); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	return g.SaveAs(path)
}

func writeSettings(home string, s Settings) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(settingsPath(home), append(b, '\n'), 0o600)
}

func readSettings(home string) (Settings, error) {
	var s Settings
	b, err := os.ReadFile(settingsPath(home))
	if errors.Is(err, os.ErrNotExist) {
		return s, fmt.Errorf("%w: %s (run `tokenim node init` or `tokenim up`)", ErrNotInitialized, Dir(home))
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", settingsPath(home), err)
	}
	return s, nil
}

// cometConfig is CometBFT's configuration for a TokenIM node: blocks only
// when there are transactions, a short commit timeout, quiet logs.
func cometConfig(home string, a Addrs) *cfg.Config {
	c := cfg.DefaultConfig()
	c.SetRoot(Dir(home))
	c.Moniker = "tokenim"
	c.LogLevel = "error"
	c.Consensus.CreateEmptyBlocks = false
	c.Consensus.TimeoutCommit = 200 * time.Millisecond
	c.Consensus.SkipTimeoutCommit = true
	c.FilterPeers = true // the app refuses new peers while the node stops (ledger.App.RefusePeers)
	c.P2P.ListenAddress = tcpAddr(a.P2P)
	c.P2P.AllowDuplicateIP = true
	c.P2P.AddrBookStrict = false
	c.RPC.ListenAddress = tcpAddr(a.RPC)
	c.Instrumentation.Prometheus = false
	return c
}

func tcpAddr(a string) string {
	if a == "" || strings.Contains(a, "://") {
		return a
	}
	return "tcp://" + a
}
