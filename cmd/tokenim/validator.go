package main

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/internal/node"
)

// validatorCmd: validator set changes, signed by the node of --home.
func validatorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validator",
		Short: "List validators; propose or approve a change (as the node in --home)",
		Long: "Validator set changes are transactions signed by validator nodes' keys. A change applies\n" +
			"when approvals exceed 2/3 of the current voting power. Run these with --home set to your\n" +
			"node's home and --node to any node's API.",
	}
	operator := func() (*node.Operator, error) {
		home, err := g.homeDir()
		if err != nil {
			return nil, err
		}
		return node.NewOperator(home, g.nodeURL())
	}
	list := &cobra.Command{
		Use: "list", Short: "Show the validator set and open proposals", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, err := operator()
			if err != nil {
				return err
			}
			v, err := op.Validators(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Printf("validators at height %d:\n", v.Height)
			for _, val := range v.Set.Validators {
				fmt.Printf("  %s  power %d\n", hex.EncodeToString(val.ValidatorKey), val.Power)
			}
			for _, p := range v.Proposals {
				fmt.Printf("proposal %d: %s → power %d, approved by %d node(s)\n", p.Id, hex.EncodeToString(p.ValidatorKey), p.Power, len(p.Approvers))
			}
			return nil
		},
	}
	var keyHex string
	var power int64
	propose := &cobra.Command{
		Use: "propose --key HEX --power N", Short: "Propose a validator's power (0 removes it)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, err := operator()
			if err != nil {
				return err
			}
			key, err := hex.DecodeString(keyHex)
			if err != nil || len(key) != 32 {
				return withHint(fmt.Errorf("--key must be 64 hex digits (an Ed25519 consensus key)"), "`tokenim validator list` shows keys; a node's own is in its priv_validator_key.json")
			}
			res, err := op.Propose(cmd.Context(), key, power)
			if err != nil {
				return err
			}
			fmt.Printf("proposed at height %d (see `tokenim validator list`)\n", res.Height)
			return nil
		},
	}
	propose.Flags().StringVar(&keyHex, "key", "", "validator consensus public key, hex")
	propose.Flags().Int64Var(&power, "power", 10, "voting power")
	approve := &cobra.Command{
		Use: "approve ID", Short: "Approve an open proposal", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("proposal id %q: %w", args[0], err)
			}
			op, err := operator()
			if err != nil {
				return err
			}
			res, err := op.Approve(cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Printf("approved at height %d\n", res.Height)
			return nil
		},
	}
	cmd.AddCommand(list, propose, approve)
	return cmd
}
