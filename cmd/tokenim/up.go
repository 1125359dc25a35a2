package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/internal/node"
)

func addrFlags(cmd *cobra.Command, a *node.Addrs) {
	cmd.Flags().StringVar(&a.API, "api", "", "node API listen address (default "+node.DefaultAPIAddr+")")
	cmd.Flags().StringVar(&a.P2P, "p2p", "", "CometBFT p2p listen address (default "+node.DefaultP2PAddr+")")
	cmd.Flags().StringVar(&a.RPC, "rpc", "", "CometBFT RPC listen address (default "+node.DefaultRPCAddr+")")
}

func upCmd(g *globals) *cobra.Command {
	var a node.Addrs
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a single-node TokenIM network (initializing it on first run)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := g.homeDir()
			if err != nil {
				return err
			}
			if !node.Initialized(home) {
				if err := node.Init(home, node.InitOptions{Addrs: a}); err != nil {
					return err
				}
				fmt.Printf("Initialized a new single-validator network in %s\n", node.Dir(home))
			}
			return runNode(cmd.Context(), home, a, true)
		},
	}
	addrFlags(cmd, &a)
	return cmd
}

func nodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Initialize or run a node"}
	var ia, sa node.Addrs
	var join string
	initC := &cobra.Command{
		Use:   "init",
		Short: "Write a new node home with a single-validator genesis",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := g.homeDir()
			if err != nil {
				return err
			}
			if join != "" {
				if err := node.InitJoin(cmd.Context(), home, node.InitOptions{Addrs: ia}, join); err != nil {
					return withHint(err, "--join takes a running node's API URL, e.g. http://127.0.0.1:27000")
				}
				fmt.Printf("Initialized a full node of %s's chain in %s\nStart it: tokenim node start --home %s\n", join, node.Dir(home), home)
				return nil
			}
			if err := node.Init(home, node.InitOptions{Addrs: ia}); err != nil {
				return withHint(err, "`tokenim node start` runs the existing node")
			}
			fmt.Printf("Initialized node in %s\n", node.Dir(home))
			return nil
		},
	}
	addrFlags(initC, &ia)
	initC.Flags().StringVar(&join, "join", "", "join the chain of the node at this API URL (as a full node)")
	start := &cobra.Command{
		Use:   "start",
		Short: "Run the node in this home until Ctrl-C or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := g.homeDir()
			if err != nil {
				return err
			}
			return runNode(cmd.Context(), home, sa, false)
		},
	}
	addrFlags(start, &sa)
	cmd.AddCommand(initC, start)
	return cmd
}

// runNode starts the node and blocks until a signal.
func runNode(ctx context.Context, home string, a node.Addrs, howTo bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.Start(ctx, home, node.StartOptions{Addrs: a, CometLog: os.Stderr})
	if err != nil {
		return withHint(err, "is another node using this home or these ports? see --api, --p2p, --rpc")
	}
	fmt.Printf("TokenIM node running\n  chain:   %s (height %d)\n  node id: %s\n  API:     %s\n  data:    %s\n",
		n.ChainID(), n.Height(), n.NodeID(), n.APIURL(), node.Dir(home))
	if howTo {
		printHowTo(n.APIURL())
	}
	fmt.Println("Ctrl-C stops the node.")
	<-ctx.Done()
	fmt.Println("Stopping…")
	return n.Stop()
}

// printHowTo shows how to chat, with the command that reaches this binary.
func printHowTo(apiURL string) {
	self := "tokenim"
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, filepath.Join(os.TempDir(), "go-build")) {
		self = "go run ./cmd/tokenim"
	}
	env := ""
	if apiURL != defaultNodeURL {
		env = "TOKENIM_NODE=" + apiURL + " "
	}
	fmt.Printf(`
Chat, in another terminal (each account lives in its own home):
  export TOKENIM_PASSPHRASE='choose a passphrase'
  %[2]sTOKENIM_HOME=/tmp/alice %[1]s account create alice
  %[2]sTOKENIM_HOME=/tmp/bob   %[1]s account create bob
  %[2]sTOKENIM_HOME=/tmp/alice %[1]s send @bob "hello bob"
  %[2]sTOKENIM_HOME=/tmp/bob   %[1]s inbox --follow
Or in the browser (prints the URL to open):
  %[2]sTOKENIM_HOME=/tmp/carol %[1]s ui
Then:
  %[2]sTOKENIM_HOME=/tmp/alice %[1]s history @bob     # the conversation, both ways, with message ids
  %[2]sTOKENIM_HOME=/tmp/alice %[1]s verify MESSAGE_ID  # prove one: anchored on chain, signed by the validators
`, self, env)
}
