package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/policy"
)

func policyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Conversation policies (CEL): list, show, test, deploy"}
	var name string
	deploy := &cobra.Command{
		Use: "deploy NAME|FILE --name NAME", Short: "Put a policy (a template or a .cel file) on chain; prints its id", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := policySource(args[0])
			if err != nil {
				return err
			}
			if name == "" {
				return withHint(fmt.Errorf("--name is required"), "tokenim policy deploy ./ephemeral.cel --name ephemeral-24h")
			}
			c, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			id, err := c.DeployPolicy(cmd.Context(), name, src)
			if err != nil {
				return err
			}
			fmt.Println(id)
			return nil
		},
	}
	deploy.Flags().StringVar(&name, "name", "", "name to deploy it under (3-32: a-z 0-9 _ -)")
	list := &cobra.Command{
		Use: "list", Short: "List the shipped policy templates", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			for _, t := range policy.Templates() {
				fmt.Printf("%-16s %s\n", t.Name, policy.ID(t.Source)[:16])
			}
			return nil
		},
	}
	show := &cobra.Command{
		Use: "show NAME|FILE", Short: "Print a template's, file's or deployed policy's source and id", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, rec, err := anyPolicySource(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			if rec != nil {
				fmt.Printf("# %s, deployed by @%s at height %d\n", rec.Name, rec.Deployer, rec.Height)
			}
			fmt.Printf("# id %s\n%s", policy.ID(src), src)
			if !strings.HasSuffix(src, "\n") {
				fmt.Println()
			}
			return nil
		},
	}
	var input string
	test := &cobra.Command{
		Use:   "test NAME|ID|FILE --input case.json",
		Short: "Dry run of a template, a file or a deployed policy: is the action in case.json allowed, and by which rule",
		Long: "case.json holds the inputs: {\"action\":\"post\",\"sender\":\"alice\",\"sender_role\":\"member\",\n" +
			"\"target\":\"\",\"target_role\":\"\",\"members\":[…],\"admins\":[…],\"size\":1000,\"sent_in_window\":0,\n\"now\":\"2026-11-23T12:00:00Z\"}",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, _, err := anyPolicySource(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			p, err := policy.Compile(src)
			if err != nil {
				return err
			}
			v, err := readCase(input)
			if err != nil {
				return err
			}
			d, err := p.Decide(v)
			if err != nil {
				return err
			}
			if d.Allowed {
				fmt.Printf("allowed (%s), cost %d\n", d.Rule, d.Cost)
			} else {
				fmt.Printf("denied by %s: %s (cost %d)\n", d.Rule, d.Reason, d.Cost)
			}
			return nil
		},
	}
	test.Flags().StringVar(&input, "input", "", "JSON file with the inputs")
	attach := &cobra.Command{
		Use:   "attach @PEER|GROUP NAME|ID|TEMPLATE|FILE|-",
		Short: "Attach a deployed policy to your 1:1 conversation with @PEER ('-' detaches), or make it GROUP's policy ('-': the default; owners only)",
		Long: "With @PEER either of you may attach it; it applies both ways. With a group's bare name only an owner may replace its\n" +
			"policy (a group under legal hold only by one that keeps it); the members rotate their sender keys. Both sides are told\n" +
			"with a notice in the conversation.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pol := args[1]
			if pol == "-" {
				pol = ""
			}
			c, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if pol, err = policyOnChain(cmd.Context(), c, pol); err != nil {
				return err
			}
			if !strings.HasPrefix(args[0], "@") {
				if err := ledger.CheckGroupName(args[0]); err != nil {
					return withHint(err, "accounts take an @ (`policy attach @bob NAME`); a bare name is a group")
				}
				if err := c.SetGroupPolicy(cmd.Context(), args[0], pol); err != nil {
					return err
				}
				fmt.Printf("%s's policy replaced; its members rotate their sender keys\n", args[0])
				return nil
			}
			return c.AttachPolicy(cmd.Context(), args[0], pol)
		},
	}
	disappearing := &cobra.Command{
		Use:   "disappearing @PEER [DURATION|off]",
		Short: "Show or set the disappearing-messages timer of your 1:1 conversation with @PEER (e.g. 30m, 1h, 1d, 1w; off)",
		Long: "Messages sent from then on are deleted from the nodes and from both parties' devices after DURATION.\n" +
			"Either party may set it; it applies both ways. Without DURATION it shows the timer in force.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if len(args) == 2 {
				d, err := parseSpan(args[1])
				if err != nil {
					return err
				}
				if err := c.SetDisappearing(cmd.Context(), args[0], d); err != nil {
					return err
				}
			}
			d, err := c.DirectDisappearing(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Println(disappearingText(d))
			return nil
		},
	}
	cmd.AddCommand(list, show, test, deploy, attach, disappearing)
	return cmd
}

// parseSpan reads a timer: "off", a Go duration ("90m", "1h30m") or days
// and weeks ("1d", "2w").
func parseSpan(s string) (time.Duration, error) {
	if s == "off" || s == "0" {
		return 0, nil
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			if v, err := strconv.ParseUint(n, 10, 16); err == nil && v > 0 {
				return time.Duration(v) * unit, nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, withHint(fmt.Errorf("%q is not a timer", s), "give e.g. 30m, 1h, 1d, 2w, or off")
	}
	return d, nil
}

// disappearingText says what a conversation's policy keeps.
func disappearingText(d client.Disappearing) string {
	switch {
	case d.LegalHold:
		return "messages are kept: the conversation's policy " + d.PolicyID[:12] + " puts them under legal hold"
	case d.After > 0:
		return "messages disappear " + roughly(d.After) + " after they are sent (policy " + d.PolicyID[:12] + ")"
	case d.PolicyID != "":
		return "messages are kept until read (policy " + d.PolicyID[:12] + " sets no retention)"
	}
	return "disappearing messages: off (no policy on this conversation)"
}

// policyOnChain resolves a --policy argument for use on chain: a deployed
// policy's name or id as it is; otherwise a template's name or a .cel
// file, deployed first if no one has deployed that source (its id is
// returned). "" stays "" (the default, or detach).
func policyOnChain(ctx context.Context, c *client.Client, arg string) (string, error) {
	if arg == "" {
		return "", nil
	}
	_, err := client.GetPolicy(ctx, client.Config{NodeURL: c.NodeURL()}, arg)
	if err == nil || !errors.Is(err, client.ErrUnknownPolicy) {
		return arg, err
	}
	src, serr := policySource(arg)
	if serr != nil {
		return "", withHint(err, "give a deployed policy's name or id, a template (`tokenim policy list`) or a .cel file")
	}
	prefix := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, strings.ToLower(strings.TrimSuffix(filepath.Base(arg), ".cel")))
	id, err := c.EnsurePolicy(ctx, prefix, src)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "%s is on chain as policy %s\n", arg, id[:12])
	return id, nil
}

// anyPolicySource is a template's source, a file's, or (rec set) that of
// a policy deployed on chain under that name or id.
func anyPolicySource(ctx context.Context, g *globals, arg string) (string, *tokenimv1.PolicyRecord, error) {
	src, err := policySource(arg)
	if err == nil {
		return src, nil, nil
	}
	if _, statErr := os.Stat(arg); statErr == nil {
		return "", nil, err // a file that does not compile
	}
	cfg, cerr := g.config()
	if cerr != nil {
		return "", nil, cerr
	}
	rec, gerr := client.GetPolicy(ctx, cfg, arg)
	if gerr != nil {
		return "", nil, withHint(fmt.Errorf("%q is not a template, a readable file or a deployed policy: %w", arg, gerr),
			"`tokenim policy list` shows the templates; deploy a policy with `tokenim policy deploy`")
	}
	return rec.Source, rec, nil
}

// policySource is a template's source, or a file's.
func policySource(nameOrFile string) (string, error) {
	if src, ok := policy.TemplateSource(nameOrFile); ok {
		return src, nil
	}
	b, err := os.ReadFile(nameOrFile)
	if err != nil {
		return "", withHint(fmt.Errorf("%q is neither a template nor a readable file: %w", nameOrFile, err), "`tokenim policy list` shows the templates")
	}
	if _, err := policy.Compile(string(b)); err != nil {
		return "", err
	}
	return string(b), nil
}

type policyCase struct {
	Action       string    `json:"action"`
	Sender       string    `json:"sender"`
	SenderRole   string    `json:"sender_role"`
	Target       string    `json:"target"`
	TargetRole   string    `json:"target_role"`
	Members      []string  `json:"members"`
	Admins       []string  `json:"admins"`
	Size         int64     `json:"size"`
	SentInWindow int64     `json:"sent_in_window"`
	Now          time.Time `json:"now"`
}

func readCase(path string) (policy.Vars, error) {
	if path == "" {
		return policy.Vars{}, withHint(fmt.Errorf("--input is required"), "see `tokenim policy test --help` for the JSON fields")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return policy.Vars{}, err
	}
	// A misspelt field would otherwise leave its input empty and the
	// dry run would answer a question no one asked.
	var c policyCase
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return policy.Vars{}, withHint(fmt.Errorf("%s: %w", path, err), "see `tokenim policy test --help` for the JSON fields")
	}
	if dec.More() {
		return policy.Vars{}, fmt.Errorf("%s: more than one JSON object", path)
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	return policy.Vars(c), nil
}
