package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

func statusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the node's chain id, height, node id and API URL, and whether the chain makes blocks (and why not)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			st, err := client.NodeStatus(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			verdict, _ := liveness(st, time.Now())
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(map[string]any{
					"chain_id": st.ChainId, "height": st.Height, "node_id": st.NodeId, "api_url": st.ApiUrl,
					"app_hash": hex.EncodeToString(st.AppHash), "version": st.Version, "pow_difficulty": st.PowDifficulty,
					"last_block_ms": st.LastBlockMs, "mempool_txs": st.MempoolTxs, "peers": st.Peers,
					"validators": st.Validators, "reachable_validators": st.ReachableValidators,
					"validator_power": st.ValidatorPower, "reachable_power": st.ReachablePower,
					"catching_up": st.CatchingUp, "state": verdict,
				})
			}
			fmt.Printf("chain:    %s\nheight:   %d%s\nnode id:  %s\nAPI:      %s\napp hash: %X\nversion:  %s\n",
				st.ChainId, st.Height, lastBlock(st, time.Now()), st.NodeId, st.ApiUrl, st.AppHash, st.Version)
			if st.Validators > 0 {
				fmt.Printf("peers:    %d; validators reached %d of %d (%d of %d voting power)\n",
					st.Peers, st.ReachableValidators, st.Validators, st.ReachablePower, st.ValidatorPower)
			}
			fmt.Printf("waiting:  %s in the mempool\nstate:    %s\n", txs(st.MempoolTxs), verdict)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// signalContext ends on Ctrl-C or SIGTERM.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// stallAfter is how long transactions may wait with no block before the
// chain is called stalled (a block normally follows within a second).
const stallAfter = 10 * time.Second

// lastBlock says how long ago the node committed its latest block.
func lastBlock(st *tokenimv1.StatusResponse, now time.Time) string {
	if st.LastBlockMs == 0 {
		return ""
	}
	return fmt.Sprintf(" (last block %s ago)", now.Sub(time.UnixMilli(st.LastBlockMs)).Round(time.Second))
}

// liveness tells a working chain from a stalled one, and why; ok is false
// when something is wrong.
func liveness(st *tokenimv1.StatusResponse, now time.Time) (verdict string, ok bool) {
	short := st.ValidatorPower > 0 && 3*st.ReachablePower <= 2*st.ValidatorPower
	reach := fmt.Sprintf("this node reaches %d of the validators' %d voting power, and blocks need more than 2/3: start the validators that are down, or check this node's peers", st.ReachablePower, st.ValidatorPower)
	since := now.Sub(time.UnixMilli(st.LastBlockMs)).Round(time.Second)
	switch {
	case st.CatchingUp:
		return "catching up: fetching the blocks it missed", false
	case st.MempoolTxs > 0 && st.LastBlockMs > 0 && since > stallAfter:
		v := fmt.Sprintf("STALLED: no block for %s while %s wait", since, txs(st.MempoolTxs))
		if short {
			v += "; " + reach
		}
		return v + ". Messages still flow where their mailboxes' nodes are up; chain changes wait.", false
	case short:
		return "cannot make blocks: " + reach, false
	}
	return "ok (blocks are made when there are transactions)", true
}

func txs(n int32) string {
	if n == 1 {
		return "1 transaction"
	}
	return fmt.Sprintf("%d transactions", n)
}
