package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/client"
)

func verifyCmd(g *globals) *cobra.Command {
	var wait time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify MSGID",
		Short: "Prove a message: in the node's Merkle log, anchored on chain, signed by the validators (checked here, offline-checkable)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			var m *client.Message
			var a *client.Anchor
			for {
				m, a, err = c.Verify(ctx, args[0])
				if !errors.Is(err, client.ErrNotAnchored) || ctx.Err() != nil {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
			if errors.Is(err, client.ErrNotAnchored) {
				return withHint(err, "the node anchors its log every block; try again in a few seconds, or wait longer with --wait 30s")
			}
			if errors.Is(err, client.ErrUnknownMessage) {
				return withHint(err, "message ids are in `tokenim inbox --json` (received) or printed by `tokenim send`")
			}
			if err != nil {
				return err
			}
			if asJSON {
				b, _ := json.Marshal(map[string]any{"id": m.ID, "anchor": a})
				fmt.Println(string(b))
				return nil
			}
			fmt.Printf("✓ anchored at height %d (%s)\n", a.Height, a.Time.Local().Format(time.RFC3339))
			fmt.Printf("  log proof ok: leaf %d of %d in node %s's log; content commitment and ciphertext match this message\n", a.LeafIndex, a.TreeSize, a.Node[:12])
			fmt.Printf("  %d/%d validator power signed the next block (validator set %s…)\n", a.SignedPower, a.TotalPower, a.ValidatorsHash[:16])
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Second, "how long to wait for the anchor")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
