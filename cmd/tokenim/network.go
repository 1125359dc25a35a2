package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/internal/node"
)

func testnetCmd() *cobra.Command {
	var o node.TestnetOptions
	var hosts string
	cmd := &cobra.Command{
		Use:   "testnet -n N --out DIR",
		Short: "Generate a network of N validators (and full nodes) with one genesis",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.Dir == "" {
				return withHint(fmt.Errorf("--out is required"), "tokenim testnet -n 4 --out /tmp/net")
			}
			if hosts != "" {
				o.Hosts = strings.Split(hosts, ",")
			}
			o.PowDifficultySet = true
			tn, err := node.GenerateTestnet(o)
			if err != nil {
				return err
			}
			printTestnet(tn)
			fmt.Printf("\nRun them all: tokenim testnet start --out %s\n", o.Dir)
			return nil
		},
	}
	cmd.Flags().IntVarP(&o.Validators, "validators", "n", 4, "number of validators")
	cmd.Flags().IntVar(&o.FullNodes, "full", 0, "number of full (non-validator) nodes")
	cmd.Flags().StringVar(&o.Dir, "out", "", "directory for the node homes and testnet.json")
	cmd.Flags().StringVar(&hosts, "hosts", "", "comma-separated host names, one per node (default: all on 127.0.0.1)")
	cmd.Flags().IntVar(&o.BasePort, "base-port", 27000, "node k uses base+10k (API), +1 (p2p), +2 (RPC)")
	cmd.Flags().StringVar(&o.ChainID, "chain-id", "tokenim-testnet", "chain id")
	cmd.Flags().Uint32Var(&o.PowDifficulty, "pow-difficulty", 16, "registration proof of work (bits)")
	start := &cobra.Command{
		Use:   "start --out DIR",
		Short: "Run every node of a generated testnet until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tn, err := node.ReadTestnet(o.Dir)
			if err != nil {
				return err
			}
			return runTestnet(cmd.Context(), tn)
		},
	}
	start.Flags().StringVar(&o.Dir, "out", "", "directory written by `tokenim testnet`")
	cmd.AddCommand(start)
	return cmd
}

func printTestnet(tn *node.Testnet) {
	fmt.Printf("chain %s\n%-7s %-9s %-28s %s\n", tn.ChainID, "name", "role", "API", "home")
	for _, n := range tn.Nodes {
		role := "full"
		if n.Validator {
			role = "validator"
		}
		fmt.Printf("%-7s %-9s %-28s %s\n", n.Name, role, n.APIURL, n.Home)
	}
}

// runTestnet runs each node as a child process of this binary, prefixes
// their output with the node's name, and stops them all on a signal or
// when one exits.
func runTestnet(ctx context.Context, tn *node.Testnet) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signalContext(ctx)
	defer stop()
	exited := make(chan string, len(tn.Nodes))
	var kids []child
	var out sync.Mutex
	for _, n := range tn.Nodes {
		c := exec.Command(self, "node", "start", "--home", n.Home)
		pipeLines(c, n.Name, &out)
		if err := c.Start(); err != nil {
			stopAll(kids)
			return fmt.Errorf("start %s: %w", n.Name, err)
		}
		k := child{cmd: c, done: make(chan struct{})}
		kids = append(kids, k)
		go func(name string) { c.Wait(); close(k.done); exited <- name }(n.Name)
	}
	for _, n := range tn.Nodes {
		waitHealthy(ctx, n.APIURL)
	}
	printTestnet(tn)
	fmt.Println("All nodes up. Ctrl-C stops them.")
	select {
	case <-ctx.Done():
	case name := <-exited:
		fmt.Printf("%s exited; stopping the others\n", name)
	}
	stopAll(kids)
	return nil
}

// child is a node process and a channel closed when it has exited.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func pipeLines(c *exec.Cmd, name string, mu *sync.Mutex) {
	r, w := io.Pipe()
	c.Stdout, c.Stderr = w, w
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			mu.Lock()
			fmt.Printf("%-6s| %s\n", name, s.Text())
			mu.Unlock()
		}
	}()
}

func waitHealthy(ctx context.Context, apiURL string) {
	for ctx.Err() == nil {
		if resp, err := http.Get(apiURL + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopAll sends SIGTERM, then SIGKILL to nodes still running after 10 s.
func stopAll(kids []child) {
	for _, k := range kids {
		k.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(10 * time.Second)
	for _, k := range kids {
		select {
		case <-k.done:
		case <-deadline:
			k.cmd.Process.Kill()
			<-k.done
		}
	}
}
