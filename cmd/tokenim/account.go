package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// accountView is what `account show` and `whois` print.
type accountView struct {
	Handle           string `json:"handle"`
	AccountKey       string `json:"account_key"`
	IdentityKey      string `json:"identity_key"`
	Fingerprint      string `json:"fingerprint"`
	RegisteredHeight int64  `json:"registered_height"`
	SignedPrekeyID   uint32 `json:"signed_prekey_id"`
	Sequence         uint64 `json:"sequence"`
}

func viewOf(a *tokenimv1.Account) accountView {
	return accountView{
		Handle: a.Handle, AccountKey: hex.EncodeToString(a.AccountKey), IdentityKey: hex.EncodeToString(a.IdentityKey),
		Fingerprint: client.Fingerprint(a.IdentityKey), RegisteredHeight: a.RegisteredHeight,
		SignedPrekeyID: a.SignedPrekey.GetId(), Sequence: a.Sequence,
	}
}

func printAccount(a *tokenimv1.Account, asJSON bool) error {
	v := viewOf(a)
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(v)
	}
	fmt.Printf("@%s\n  account key:  %s\n  identity key: %s\n  fingerprint:  %s\n  registered at height %d\n",
		v.Handle, v.AccountKey, v.IdentityKey, v.Fingerprint, v.RegisteredHeight)
	return nil
}

func accountCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "account", Short: "Create or show this home's account"}
	create := &cobra.Command{
		Use:   "create HANDLE",
		Short: "Create keys, register HANDLE on chain and upload prekeys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if client.Exists(cfg.Home) {
				return withHint(fmt.Errorf("%w: %s", client.ErrAccountExists, client.Dir(cfg.Home)), "use another --home for another account")
			}
			if cfg.Passphrase, err = passphrase(true); err != nil {
				return err
			}
			c, err := client.Create(cmd.Context(), cfg, args[0])
			if c == nil {
				return err
			}
			defer c.Close()
			acct, lerr := c.Lookup(cmd.Context(), c.Handle())
			if lerr != nil {
				return lerr
			}
			fmt.Printf("Created @%s (keys in %s)\n", c.Handle(), client.Dir(cfg.Home))
			if perr := printAccount(acct, false); perr != nil {
				return perr
			}
			return err
		},
	}
	var showJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Show this home's account as the chain records it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			acct, err := c.Lookup(cmd.Context(), c.Handle())
			if err != nil {
				return err
			}
			return printAccount(acct, showJSON)
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")
	cmd.AddCommand(create, show)
	return cmd
}

func whoisCmd(g *globals) *cobra.Command {
	var asJSON, verify bool
	var at int64
	cmd := &cobra.Command{
		Use:   "whois @HANDLE [--verify] [--at HEIGHT]",
		Short: "Look a handle up on chain: keys, fingerprint, registration height (--verify: proven against a signed block)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if at != 0 {
				return whoisAt(cmd, g, args[0], at, asJSON)
			}
			if verify {
				return whoisVerified(cmd, g, args[0], asJSON)
			}
			cfg, err := g.config()
			if err != nil {
				return err
			}
			acct, err := client.Lookup(cmd.Context(), cfg, args[0])
			if err != nil {
				return err
			}
			return printAccount(acct, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&verify, "verify", false, "prove the record against a block signed by the validators this account trusts (needs an account)")
	cmd.Flags().Int64Var(&at, "at", 0, "the record as this block height left it, proven (which keys it had then; needs an account)")
	return cmd
}

// whoisAt prints an account's record as block at left it, proven.
func whoisAt(cmd *cobra.Command, g *globals, handle string, at int64, asJSON bool) error {
	c, err := g.openToProve(cmd.Context(), "--at")
	if err != nil {
		return err
	}
	defer c.Close()
	acct, pr, err := c.ProveAccountAt(cmd.Context(), strings.TrimPrefix(handle, "@"), at)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"account": viewOf(acct), "proven": pr, "at": at})
	}
	if err := printAccount(acct, false); err != nil {
		return err
	}
	fmt.Printf("  as block %d left it: ✓ proven against block %d's app hash, signed by %d/%d validator power\n", at, pr.Height, pr.SignedPower, pr.TotalPower)
	return nil
}

func whoisVerified(cmd *cobra.Command, g *globals, handle string, asJSON bool) error {
	c, err := g.openToProve(cmd.Context(), "--verify")
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.CheckContact(cmd.Context(), handle)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"account": viewOf(st.Account), "proven": st.Proven, "pinned": st.Pinned, "changed": st.Changed})
	}
	if err := printAccount(st.Account, false); err != nil {
		return err
	}
	fmt.Printf("  ✓ key proven against block %d's app hash, signed by %d/%d validator power\n", st.Proven.Height, st.Proven.SignedPower, st.Proven.TotalPower)
	if st.Changed {
		fmt.Printf("\n  !!! WARNING: @%s's identity key CHANGED !!!\n  pinned at first contact: %s\n  now on chain:            %s\n  Messages with @%s are refused until you compare fingerprints with them in person\n", st.Account.Handle, st.Pinned, st.Fingerprint, st.Account.Handle)
	}
	return nil
}

// openToProve unlocks this home's account for a proof asked for by flag:
// proofs are checked against the validator set the account trusts.
func (g *globals) openToProve(ctx context.Context, flag string) (*client.Client, error) {
	c, err := g.open(ctx)
	if errors.Is(err, client.ErrNoAccount) {
		return nil, withHint(err, flag+" checks against the validator set your account trusts: create one first (tokenim account create NAME)")
	}
	return c, err
}

// open unlocks this home's account.
func (g *globals) open(ctx context.Context) (*client.Client, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	if !client.Exists(cfg.Home) {
		return nil, fmt.Errorf("%w: %s", client.ErrNoAccount, client.Dir(cfg.Home))
	}
	if cfg.Passphrase, err = passphrase(false); err != nil {
		return nil, err
	}
	return client.Open(ctx, cfg)
}
