package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
)

func groupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Groups: membership and roles on chain, messages with sender keys"}
	// withClient runs fn with this home's unlocked account.
	withClient := func(ctx context.Context, fn func(*client.Client) error) error {
		c, err := g.open(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(c)
	}
	var members, pol, role string
	var asJSON bool
	create := &cobra.Command{
		Use: "create NAME [--members @a,@b] [--policy NAME]", Short: "Create a group you own", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ms []string
			if members != "" {
				ms = strings.Split(members, ",")
			}
			return withClient(cmd.Context(), func(c *client.Client) error {
				p, err := policyOnChain(cmd.Context(), c, pol)
				if err != nil {
					return err
				}
				if err := c.CreateGroup(cmd.Context(), args[0], ms, p); err != nil {
					return err
				}
				fmt.Printf("created %s\n", args[0])
				return nil
			})
		},
	}
	create.Flags().StringVar(&members, "members", "", "comma-separated handles")
	create.Flags().StringVar(&pol, "policy", "", "a deployed policy's name or id, or a template or .cel file (deployed first if needed); default: the default policy")
	add := &cobra.Command{
		Use: "add NAME @HANDLE [--role ROLE]", Short: "Add a member", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd.Context(), func(c *client.Client) error {
				if err := c.GroupAdd(cmd.Context(), args[0], args[1], role); err != nil {
					return err
				}
				fmt.Printf("added @%s to %s as %s: they read what is posted from now on, not before\n", bare(args[1]), args[0], role)
				return nil
			})
		},
	}
	add.Flags().StringVar(&role, "role", "member", "owner, admin, member or reader")
	remove := &cobra.Command{
		Use: "remove NAME @HANDLE", Short: "Remove a member (the others rotate their sender keys)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd.Context(), func(c *client.Client) error {
				if err := c.GroupRemove(cmd.Context(), args[0], args[1]); err != nil {
					return err
				}
				fmt.Printf("removed @%s from %s: the members rotate their sender keys, so @%s cannot read what is posted from now on\n", bare(args[1]), args[0], bare(args[1]))
				return nil
			})
		},
	}
	var joinRole string
	join := &cobra.Command{
		Use: "join NAME [--role reader]", Short: "Join a group whose policy lets anyone in (can_join)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd.Context(), func(c *client.Client) error {
				if err := c.GroupJoin(cmd.Context(), args[0], joinRole); err != nil {
					return err
				}
				fmt.Printf("joined %s: you read what its members post from now on\n", args[0])
				return nil
			})
		},
	}
	join.Flags().StringVar(&joinRole, "role", "member", "member or reader")
	leave := &cobra.Command{
		Use: "leave NAME", Short: "Leave a group", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd.Context(), func(c *client.Client) error {
				if err := c.GroupLeave(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Printf("left %s: the members rotate their sender keys; what you received stays in your history\n", args[0])
				return nil
			})
		},
	}
	setRole := &cobra.Command{
		Use: "role NAME @HANDLE ROLE", Short: "Set a member's role (owner, admin, member, reader)", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd.Context(), func(c *client.Client) error {
				if err := c.GroupSetRole(cmd.Context(), args[0], args[1], args[2]); err != nil {
					return err
				}
				fmt.Printf("@%s is now %s in %s\n", bare(args[1]), args[2], args[0])
				return nil
			})
		},
	}
	var at int64
	var epochs bool
	show := &cobra.Command{
		Use: "show NAME [--at HEIGHT] [--epochs] [--json]", Short: "Members, roles, policy and epoch, proven against the chain (now, or as a past block left them)",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd.Context(), func(c *client.Client) error {
				gr, pr, err := c.ProveGroup(cmd.Context(), args[0], at)
				if err != nil {
					return err
				}
				if asJSON && !epochs {
					return json.NewEncoder(os.Stdout).Encode(struct {
						*tokenimv1.GroupRecord
						Proven *client.Proven `json:"proven"`
					}{gr, pr})
				}
				if !asJSON {
					printGroup(os.Stdout, gr, pr, at)
					if at == 0 && ledger.Role(gr, c.Handle()) != "" {
						rights, err := c.GroupRights(cmd.Context(), gr)
						if err != nil {
							return err
						}
						printRights(os.Stdout, rights)
					}
				}
				if !epochs {
					return nil
				}
				all, err := c.ClosedEpochs(cmd.Context(), gr)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(os.Stdout).Encode(struct {
						*tokenimv1.GroupRecord
						Proven *client.Proven       `json:"proven"`
						Epochs []client.ClosedEpoch `json:"closed_epochs"`
					}{gr, pr, all})
				}
				for _, e := range all {
					fmt.Printf("epoch %d, closed in block %d; its last members (as block %d left them, proven by block %d):\n", e.Epoch, e.ClosedAt, e.ClosedAt-1, e.Proven.Height)
					for _, m := range e.Members {
						fmt.Printf("  @%-32s %s\n", m.Handle, m.Role)
					}
				}
				return nil
			})
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	show.Flags().Int64Var(&at, "at", 0, "the group as this block height left it (default: now)")
	show.Flags().BoolVar(&epochs, "epochs", false, "also each closed epoch's last member list (who could read it), proven")
	var listJSON bool
	list := &cobra.Command{
		Use: "list [--json]", Short: "The groups you belong to, with your role (--json: their names)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd.Context(), func(c *client.Client) error {
				gs, err := c.Groups(cmd.Context())
				if err != nil {
					return err
				}
				if listJSON {
					return json.NewEncoder(os.Stdout).Encode(gs)
				}
				for _, name := range gs {
					gr, err := c.Group(cmd.Context(), name) // proven
					if err != nil {
						return fmt.Errorf("%s: %w", name, err)
					}
					fmt.Printf("%-32s %-7s %d members, epoch %d\n", name, ledger.Role(gr, c.Handle()), len(gr.Members), gr.Epoch)
				}
				return nil
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	cmd.AddCommand(create, add, join, remove, leave, setRole, show, list)
	return cmd
}

// printRights prints what the group's policy lets this account do now.
func printRights(w io.Writer, r client.Rights) {
	may := func(ok bool, what string) string {
		if ok {
			return "you may " + what
		}
		return "you may not " + what
	}
	fmt.Fprintf(w, "rules, as the nodes apply them to you now (`tokenim policy show %s` prints the policy):\n", r.PolicyID)
	post := may(r.Post, "post")
	if !r.Post {
		post += " (" + r.PostReason + ")"
	}
	fmt.Fprintf(w, "  %s; %s; %s\n", post, may(r.Invite, "add members"), may(r.Remove, "remove members"))
	keep := "messages are kept until read"
	switch {
	case r.Disappearing.LegalHold:
		keep = "messages are kept (legal hold)"
	case r.Disappearing.After > 0:
		keep = "messages disappear after " + client.Span(r.Disappearing.After)
	}
	fmt.Fprintf(w, "  %s; at most %d bytes a message, %d posts per %s\n", keep, r.MaxSize, r.Rate, client.Span(r.RateWindow))
	if !r.ReadOnlyAfter.IsZero() {
		fmt.Fprintf(w, "  read-only from %s\n", r.ReadOnlyAfter.Local().Format("2006-01-02 15:04"))
	}
}

// printGroup prints a proven group record (at: the height asked for, 0 the
// latest).
func printGroup(w io.Writer, gr *tokenimv1.GroupRecord, pr *client.Proven, at int64) {
	fmt.Fprintf(w, "%s  policy %s…  epoch %d  created at height %d\n", gr.Name, gr.PolicyId[:16], gr.Epoch, gr.CreatedHeight)
	if at > 0 {
		fmt.Fprintf(w, "  as block %d left it: ", at)
	} else {
		fmt.Fprint(w, "  ")
	}
	fmt.Fprintf(w, "✓ proven against block %d's app hash, signed by %d/%d validator power\n", pr.Height, pr.SignedPower, pr.TotalPower)
	for _, m := range gr.Members {
		fmt.Fprintf(w, "  @%-32s %s\n", m.Handle, m.Role)
	}
}

// bare is a handle as typed, without its @ (for messages).
func bare(h string) string {
	if n, err := ledger.NormalizeHandle(h); err == nil {
		return n
	}
	return strings.TrimPrefix(h, "@")
}
