package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/internal/loadgen"
	"github.com/tokenim/tokenim/internal/node"
)

func benchCmd(g *globals) *cobra.Command {
	var o loadgen.Options
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a node: durable envelopes/s admitted and delivered, and latency at half that load",
		Long: "Measure a node. Without --node (or TOKENIM_NODE) it starts a throw-away node in a temporary\n" +
			"directory first, so the figures are for this machine.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.NodeURL = g.node
			if o.NodeURL == "" {
				o.NodeURL = os.Getenv("TOKENIM_NODE")
			}
			if o.NodeURL == "" {
				n, cleanup, err := tempNode()
				if err != nil {
					return err
				}
				defer cleanup()
				o.NodeURL = n.APIURL()
				fmt.Printf("Started a temporary node at %s\n", o.NodeURL)
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			fmt.Printf("Benchmarking %s: %d clients, %s per phase…\n", o.NodeURL, o.Clients, o.Duration)
			res, err := loadgen.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Println(res)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.ReceiverURL, "receiver-node", "", "API URL receivers read from (cross-node delivery); default: the same node")
	cmd.Flags().IntVar(&o.Clients, "clients", 16, "sender→receiver pairs")
	cmd.Flags().DurationVar(&o.Duration, "duration", 5*time.Second, "length of each phase")
	cmd.Flags().IntVar(&o.Size, "size", 1024, "ciphertext bytes per envelope")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run (node and load) to this file")
	cmd.Flags().Float64Var(&o.LatencyRate, "latency-rate", 0, "envelopes/s in the latency phase (default: half the measured throughput)")
	cmd.Flags().IntVar(&o.Batch, "batch", 64, "envelopes per Send in the throughput phase")
	return cmd
}

// tempNode starts a node in a temporary home on free loopback ports.
func tempNode() (*node.Node, func(), error) {
	dir, err := os.MkdirTemp("", "tokenim-bench-")
	if err != nil {
		return nil, nil, err
	}
	home := filepath.Join(dir, "home")
	addrs := node.Addrs{API: freeLoopback(), P2P: freeLoopback(), RPC: freeLoopback()}
	if err := node.Init(home, node.InitOptions{Addrs: addrs, ChainID: "tokenim-bench", PowDifficulty: 4, PowDifficultySet: true}); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	n, err := node.Start(context.Background(), home, node.StartOptions{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return n, func() { n.Stop(); os.RemoveAll(dir) }, nil
}

func freeLoopback() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}
