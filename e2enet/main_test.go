package e2enet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/node"
)

// network is the four-validator network this package's tests share.
type network struct {
	dir   string
	tn    *node.Testnet
	nodes []*node.Node
}

var net4 *network

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokenim-e2enet-")
	if err != nil {
		panic(err)
	}
	code := 1
	func() {
		defer os.RemoveAll(dir)
		nw, err := startNetwork(dir, 4)
		if err != nil {
			fmt.Fprintln(os.Stderr, "start network:", err)
			return
		}
		net4 = nw
		defer nw.stopAll()
		code = m.Run()
	}()
	os.Exit(code)
}

func freePortBase() int {
	// Find 40 consecutive free ports: node k uses base+10k … base+10k+2.
	for base := 21000 + os.Getpid()%200*50; base < 60000; base += 1000 {
		ok := true
		for p := base; p < base+40 && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	return 27000
}

func startNetwork(dir string, n int) (*network, error) {
	tn, err := node.GenerateTestnet(node.TestnetOptions{Dir: dir, Validators: n, BasePort: freePortBase(),
		ChainID: "tokenim-e2enet", PowDifficulty: 2, PowDifficultySet: true})
	if err != nil {
		return nil, err
	}
	nw := &network{dir: dir, tn: tn, nodes: make([]*node.Node, n)}
	for i := range n {
		if err := nw.startIdx(i); err != nil {
			nw.stopAll()
			return nil, err
		}
	}
	return nw, nw.waitRegistered(n)
}

func (nw *network) startIdx(i int) error {
	var err error
	for try := 0; try < 50; try++ { // ports may linger for a moment after a stop
		var n *node.Node
		o := node.StartOptions{}
		if os.Getenv("TOKENIM_E2E_COMETLOG") != "" {
			o.CometLog = os.Stderr
		}
		if n, err = node.Start(context.Background(), nw.tn.Nodes[i].Home, o); err == nil {
			nw.nodes[i] = n
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// waitRegistered waits until every node sees n nodes in the registry.
func (nw *network) waitRegistered(n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for i := range nw.nodes {
		api := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, nw.url(i))
		for {
			res, err := api.ListNodes(context.Background(), connect.NewRequest(&tokenimv1.ListNodesRequest{}))
			if err == nil && len(res.Msg.Nodes) >= n {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node%d: registry incomplete after 60 s (%v)", i, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func (nw *network) url(i int) string { return nw.tn.Nodes[i].APIURL }

func (nw *network) stop(t *testing.T, i int) {
	t.Helper()
	if err := nw.nodes[i].Stop(); err != nil {
		t.Fatalf("stop node%d: %v", i, err)
	}
}

func (nw *network) start(t *testing.T, i int) {
	t.Helper()
	if err := nw.startIdx(i); err != nil {
		t.Fatalf("start node%d: %v", i, err)
	}
	// Until it has caught up, the node does not vote: stopping another
	// validator then would stall the chain.
	for deadline := time.Now().Add(60 * time.Second); nw.nodes[i].CatchingUp(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node%d still catching up after 60 s", i)
		}
	}
}

func (nw *network) stopAll() {
	for _, n := range nw.nodes {
		if n != nil {
			n.Stop()
		}
	}
}
