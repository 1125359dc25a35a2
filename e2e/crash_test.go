package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/node"
)

// childNodeEnv makes the test binary run a node instead of tests, so a test
// can SIGKILL a real node process.
const childNodeEnv = "TOKENIM_E2E_CHILD_NODE"

func runChildNode(home string) {
	addrs := node.Addrs{API: os.Getenv("TOKENIM_E2E_API"), P2P: os.Getenv("TOKENIM_E2E_P2P"), RPC: os.Getenv("TOKENIM_E2E_RPC")}
	if _, err := node.Start(context.Background(), home, node.StartOptions{Addrs: addrs}); err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		os.Exit(3)
	}
	select {}
}

type childNode struct {
	home  string
	addrs node.Addrs
	cmd   *exec.Cmd
}

func (c *childNode) start(t *testing.T) {
	t.Helper()
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childNodeEnv+"="+c.home,
		"TOKENIM_E2E_API="+c.addrs.API, "TOKENIM_E2E_P2P="+c.addrs.P2P, "TOKENIM_E2E_RPC="+c.addrs.RPC)
	c.cmd.Stderr = os.Stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + c.addrs.API + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.kill()
	t.Fatal("child node did not come up")
}

func (c *childNode) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

// A node killed with SIGKILL right after acknowledging sends comes back
// with every acknowledged envelope, in order.
func TestNodeSurvivesSIGKILL(t *testing.T) {
	ctx := ctxT(t)
	c := &childNode{home: filepath.Join(t.TempDir(), "n"), addrs: node.Addrs{API: freeAddr(), P2P: freeAddr(), RPC: freeAddr()}}
	if err := node.Init(c.home, node.InitOptions{Addrs: c.addrs, ChainID: "tokenim-crash", PowDifficulty: 2, PowDifficultySet: true}); err != nil {
		t.Fatal(err)
	}
	c.start(t)
	defer c.kill()
	conf := func() client.Config {
		return client.Config{Home: t.TempDir(), NodeURL: "http://" + c.addrs.API, Passphrase: []byte(testPassphrase), KeystoreWorkFactor: 10}
	}
	alice, err := client.Create(ctx, conf(), "crash_alice")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bobCfg := conf()
	bob, err := client.Create(ctx, bobCfg, "crash_bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.Close()
	const n = 30
	for i := range n {
		if _, err := alice.Send(ctx, "crash_bob", fmt.Sprintf("m%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.kill() // no chance to flush anything
	c.start(t)
	bob, err = client.Open(ctx, bobCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("after SIGKILL: %d of %d acknowledged messages", len(got), n)
	}
	for i, m := range got {
		if m.Text != fmt.Sprintf("m%02d", i) {
			t.Fatalf("message %d is %q: order broken", i, m.Text)
		}
	}
}
