package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/node"
)

// testNet is the one node this package's tests share.
type testNet struct {
	home  string
	addrs node.Addrs
	n     *node.Node
}

var tn *testNet

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestMain(m *testing.M) {
	if home := os.Getenv(childNodeEnv); home != "" {
		runChildNode(home) // never returns: the parent kills it
	}
	if path := os.Getenv(receiversEnv); path != "" {
		runReceivers(path) // never returns
	}
	dir, err := os.MkdirTemp("", "tokenim-e2e-")
	if err != nil {
		panic(err)
	}
	tn = &testNet{home: filepath.Join(dir, "node"), addrs: node.Addrs{API: freeAddr(), P2P: freeAddr(), RPC: freeAddr()}}
	if err := node.Init(tn.home, node.InitOptions{Addrs: tn.addrs, ChainID: "tokenim-e2e", PowDifficulty: 4, PowDifficultySet: true}); err != nil {
		panic(err)
	}
	if err := tn.start(); err != nil {
		panic(err)
	}
	code := m.Run()
	tn.n.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func (t *testNet) start() error {
	n, err := node.Start(context.Background(), t.home, node.StartOptions{Addrs: t.addrs})
	if err != nil {
		return err
	}
	t.n = n
	return nil
}

// restart stops the node and starts it again on the same home and ports.
func (t *testNet) restart(tb testing.TB) {
	tb.Helper()
	if err := t.n.Stop(); err != nil {
		tb.Fatalf("stop node: %v", err)
	}
	var err error
	for i := 0; i < 50; i++ { // the OS may hold the ports for a moment
		if err = t.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("restart node: %v", err)
}

func (t *testNet) url() string { return "http://" + t.addrs.API }

var handleSeq atomic.Int64

// uniqueHandle gives each test its own accounts.
func uniqueHandle(base string) string {
	return fmt.Sprintf("%s%d", base, handleSeq.Add(1))
}

const testPassphrase = "correct horse battery staple"

func cfg(home string) client.Config {
	return client.Config{Home: home, NodeURL: tn.url(), Passphrase: []byte(testPassphrase), KeystoreWorkFactor: 10}
}

// newUser registers a fresh account in its own home.
func newUser(t *testing.T, base string) (*client.Client, string) {
	t.Helper()
	home := t.TempDir()
	c, err := client.Create(context.Background(), cfg(home), uniqueHandle(base))
	if err != nil {
		t.Fatalf("create %s: %v", base, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, home
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
