package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
)

// TestnetOptions configure GenerateTestnet.
type TestnetOptions struct {
	Dir        string
	Validators int
	FullNodes  int
	// Hosts, if given, has one host name per node: nodes listen on 0.0.0.0
	// and advertise host:port. Default: all on 127.0.0.1.
	Hosts            []string
	BasePort         int // node k uses BasePort+10k (API), +1 (p2p), +2 (RPC)
	ChainID          string
	PowDifficulty    uint32
	PowDifficultySet bool
}

// TestnetNode is one node of a generated testnet (testnet.json).
type TestnetNode struct {
	Name       string `json:"name"`
	Home       string `json:"home"`
	APIURL     string `json:"api_url"`
	P2PAddress string `json:"p2p_address"`
	Validator  bool   `json:"validator"`
	Addrs      Addrs  `json:"-"`
}

// Testnet is what GenerateTestnet wrote.
type Testnet struct {
	ChainID string        `json:"chain_id"`
	Nodes   []TestnetNode `json:"nodes"`
}

// TestnetFile is the name of the testnet description in its directory.
const TestnetFile = "testnet.json"

// GenerateTestnet writes Validators+FullNodes node homes under Dir
// (Dir/node0 …) sharing one genesis with the validators (power 10 each),
// each listing all the others as persistent peers, and Dir/testnet.json.
func GenerateTestnet(o TestnetOptions) (*Testnet, error) {
	n := o.Validators + o.FullNodes
	if o.Validators < 1 || n > 100 {
		return nil, fmt.Errorf("testnet: %d validators and %d full nodes (1 to 100 nodes, at least one validator)", o.Validators, o.FullNodes)
	}
	if len(o.Hosts) > 0 && len(o.Hosts) != n {
		return nil, fmt.Errorf("testnet: %d hosts for %d nodes", len(o.Hosts), n)
	}
	if o.BasePort == 0 {
		o.BasePort = 27000
	}
	if o.ChainID == "" {
		o.ChainID = "tokenim-testnet"
	}
	tn := &Testnet{ChainID: o.ChainID}
	for k := range n {
		node, err := initTestnetNode(o, k)
		if err != nil {
			return nil, err
		}
		tn.Nodes = append(tn.Nodes, node)
	}
	if err := shareGenesis(tn, o); err != nil {
		return nil, err
	}
	for k := range tn.Nodes {
		if err := setPeers(tn.Nodes[k].Home, peersExcept(tn, k), externalAddr(o, k)); err != nil {
			return nil, err
		}
	}
	b, err := json.MarshalIndent(tn, "", "  ")
	if err != nil {
		return nil, err
	}
	return tn, os.WriteFile(filepath.Join(o.Dir, TestnetFile), append(b, '\n'), 0o644)
}

func initTestnetNode(o TestnetOptions, k int) (TestnetNode, error) {
	host, listen := "127.0.0.1", "127.0.0.1"
	if len(o.Hosts) > 0 {
		host, listen = o.Hosts[k], "0.0.0.0"
	}
	port := func(off int) string { return strconv.Itoa(o.BasePort + 10*k + off) }
	a := Addrs{API: listen + ":" + port(0), P2P: listen + ":" + port(1), RPC: listen + ":" + port(2)}
	name := fmt.Sprintf("node%d", k)
	home := filepath.Join(o.Dir, name)
	err := Init(home, InitOptions{Addrs: a, ChainID: o.ChainID, PowDifficulty: o.PowDifficulty, PowDifficultySet: o.PowDifficultySet, Moniker: name})
	if err != nil {
		return TestnetNode{}, err
	}
	apiURL := "http://" + host + ":" + port(0)
	if len(o.Hosts) > 0 {
		if err := writeSettings(home, Settings{APIAddr: a.API, AdvertiseURL: apiURL}); err != nil {
			return TestnetNode{}, err
		}
	}
	nk, err := p2p.LoadNodeKey(filepath.Join(Dir(home), "config", "node_key.json"))
	if err != nil {
		return TestnetNode{}, err
	}
	return TestnetNode{Name: name, Home: home, APIURL: apiURL, P2PAddress: string(nk.ID()) + "@" + host + ":" + port(1),
		Validator: k < o.Validators, Addrs: a}, nil
}

// shareGenesis rewrites every node's genesis with all the validators.
func shareGenesis(tn *Testnet, o TestnetOptions) error {
	g, err := types.GenesisDocFromFile(filepath.Join(Dir(tn.Nodes[0].Home), "config", "genesis.json"))
	if err != nil {
		return err
	}
	g.Validators = nil
	for _, node := range tn.Nodes {
		if !node.Validator {
			continue
		}
		cfgDir := filepath.Join(Dir(node.Home), "config")
		pv := privval.LoadFilePVEmptyState(filepath.Join(cfgDir, "priv_validator_key.json"), "")
		pub := pv.Key.PubKey
		g.Validators = append(g.Validators, types.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 10, Name: node.Name})
	}
	for _, node := range tn.Nodes {
		if err := g.SaveAs(filepath.Join(Dir(node.Home), "config", "genesis.json")); err != nil {
			return err
		}
	}
	return nil
}

func peersExcept(tn *Testnet, k int) []string {
	var out []string
	for i, node := range tn.Nodes {
		if i != k {
			out = append(out, node.P2PAddress)
		}
	}
	return out
}

func externalAddr(o TestnetOptions, k int) string {
	if len(o.Hosts) == 0 {
		return ""
	}
	return o.Hosts[k] + ":" + strconv.Itoa(o.BasePort+10*k+1)
}

// setPeers writes persistent peers (and the advertised p2p address) into
// a home's config.toml.
func setPeers(home string, peers []string, external string) error {
	c, err := loadCometConfig(home)
	if err != nil {
		return err
	}
	c.P2P.PersistentPeers = strings.Join(peers, ",")
	if external != "" {
		c.P2P.ExternalAddress = external
	}
	cfg.WriteConfigFile(filepath.Join(Dir(home), "config", "config.toml"), c)
	return nil
}

// ReadTestnet reads Dir/testnet.json.
func ReadTestnet(dir string) (*Testnet, error) {
	b, err := os.ReadFile(filepath.Join(dir, TestnetFile))
	if err != nil {
		return nil, fmt.Errorf("%w (generate one with `tokenim testnet -n 4 --out %s`)", err, dir)
	}
	var tn Testnet
	if err := json.Unmarshal(b, &tn); err != nil {
		return nil, fmt.Errorf("%s: %w", TestnetFile, err)
	}
	return &tn, nil
}

// InitJoin writes a new full-node home that follows the chain of the node
// at apiURL: its genesis, and that node as a persistent peer.
func InitJoin(ctx context.Context, home string, o InitOptions, apiURL string) error {
	api := tokenimv1connect.NewNodeServiceClient(&http.Client{Timeout: 10 * time.Second}, strings.TrimRight(apiURL, "/"))
	res, err := api.Genesis(ctx, connect.NewRequest(&tokenimv1.GenesisRequest{}))
	if err != nil {
		return fmt.Errorf("fetch genesis from %s: %w", apiURL, err)
	}
	g, err := types.GenesisDocFromJSON(res.Msg.GenesisJson)
	if err != nil {
		return fmt.Errorf("genesis from %s: %w", apiURL, err)
	}
	if res.Msg.P2PAddress == "" {
		return errors.New("the node did not tell its p2p address")
	}
	o.ChainID = g.ChainID
	if err := Init(home, o); err != nil {
		return err
	}
	if err := g.SaveAs(filepath.Join(Dir(home), "config", "genesis.json")); err != nil {
		return err
	}
	return setPeers(home, []string{res.Msg.P2PAddress}, "")
}
