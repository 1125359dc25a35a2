package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/client"
)

func statusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the node's chain id, height, node id and API URL",
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
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(map[string]any{
					"chain_id": st.ChainId, "height": st.Height, "node_id": st.NodeId, "api_url": st.ApiUrl,
					"app_hash": hex.EncodeToString(st.AppHash), "version": st.Version, "pow_difficulty": st.PowDifficulty,
				})
			}
			fmt.Printf("chain:    %s\nheight:   %d\nnode id:  %s\nAPI:      %s\napp hash: %X\nversion:  %s\n",
				st.ChainId, st.Height, st.NodeId, st.ApiUrl, st.AppHash, st.Version)
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
