package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
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
			var mem *client.Membership
			if m.Group != "" {
				if mem, err = c.MembershipAt(ctx, m, a); err != nil {
					return fmt.Errorf("anchored, but the group's members then: %w", err)
				}
			}
			if asJSON {
				b, _ := json.Marshal(map[string]any{"id": m.ID, "anchor": a, "membership": mem})
				fmt.Println(string(b))
				return nil
			}
			fmt.Printf("✓ anchored at height %d, committed %s\n", a.Height, a.Committed.Local().Format(time.RFC3339))
			fmt.Printf("  log proof ok: leaf %d of %d in node %s's log; content commitment and ciphertext match this message\n", a.LeafIndex, a.TreeSize, a.Node[:12])
			fmt.Printf("  %d/%d validator power signed the next block (validator set %s…)\n", a.SignedPower, a.TotalPower, a.ValidatorsHash[:16])
			if mem != nil {
				fmt.Printf("  ✓ in %s just before that block (proven by block %d): @%s %s, you (@%s) %s\n", mem.Group, mem.Proven.Height, mem.Sender, mem.SenderRole, mem.Reader, mem.ReaderRole)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Second, "how long to wait for the anchor")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func exportCmd(g *globals) *cobra.Command {
	var conversation, out string
	var ids []string
	cmd := &cobra.Command{
		Use:   "export --conversation @HANDLE|GROUP --out FILE [--ids ID,…]",
		Short: "Write an audit file: the messages you choose to reveal, with the proofs that they were anchored (checkable offline)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if conversation == "" || out == "" {
				return withHint(errors.New("--conversation and --out are required"), "tokenim export --conversation @bob --out case.tokenim-audit")
			}
			c, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			want := map[string]bool{}
			for _, id := range ids {
				want[id] = true
			}
			var filter func(*client.Message) bool
			if len(want) > 0 {
				filter = func(m *client.Message) bool { return want[m.ID] }
			}
			if _, err := c.Sync(cmd.Context()); err != nil { // what waits on the node is part of the conversation
				return err
			}
			ex, skipped, err := c.ExportConversation(cmd.Context(), strings.TrimPrefix(conversation, "@"), filter)
			if err != nil {
				return err
			}
			if len(ex.Messages) == 0 {
				return withHint(fmt.Errorf("nothing to export from %s (%d skipped)", conversation, len(skipped)), "messages are exportable once anchored: tokenim verify MSGID")
			}
			b, err := ex.Encode()
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, b, 0o600); err != nil {
				return err
			}
			fmt.Printf("wrote %s: %d messages with proofs\n", out, len(ex.Messages))
			for _, s := range skipped {
				fmt.Printf("  skipped %s\n", s)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&conversation, "conversation", "", "@handle or group name")
	cmd.Flags().StringVar(&out, "out", "", "the audit file to write")
	cmd.Flags().StringSliceVar(&ids, "ids", nil, "reveal only these message ids (default: all of the conversation)")
	return cmd
}

func verifyExportCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify-export FILE",
		Short: "Check an audit file offline: contents against commitments, every proof, the senders' numbering",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			rep, err := client.VerifyExport(data)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(rep)
			}
			for _, l := range rep.Transcript {
				roles := ""
				if l.SenderRole != "" {
					roles = fmt.Sprintf("; then: %s %s, %s (this copy's reader) %s", l.From, l.SenderRole, l.Member, l.MemberRole)
				}
				fmt.Printf("%s  %s → %s #%d: %s   [anchored at height %d, %s%s]\n", l.SentAt.Local().Format("2006-01-02 15:04:05"),
					l.From, l.To, l.Counter, l.Text, l.Height, l.AnchoredAt.Local().Format(time.RFC3339), roles)
			}
			fmt.Printf("✓ %d messages, %d gaps, all anchored (chain %s; validator sets %s)\n", rep.Messages, rep.Gaps, rep.ChainID, strings.Join(shortHashes(rep.ValidatorSets), ", "))
			if rep.NotMembers > 0 {
				fmt.Printf("WARNING: %d group messages are from senders the chain did not list as members just before their anchor block\n", rep.NotMembers)
			}
			if rep.Broken > 0 {
				fmt.Printf("WARNING: %d messages do not chain to their predecessor (prev_id) or repeat a number\n", rep.Broken)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func shortHashes(hs []string) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h[:min(16, len(h))] + "…"
	}
	return out
}
