// Command tokenim is TokenIM's one binary: it runs a node (`up`, `node`)
// and is the command-line client (`account`, `send`, `inbox`, …). It only
// parses flags and wires packages; the work is done in client and
// internal/node.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// globals are the flags every command takes.
type globals struct {
	home string
	node string
}

func main() {
	g := &globals{}
	root := &cobra.Command{
		Use:           "tokenim",
		Short:         "TokenIM: end-to-end encrypted messaging on a public BFT chain",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.home, "home", "", "TokenIM home directory (env TOKENIM_HOME, default ~/.tokenim)")
	root.PersistentFlags().StringVar(&g.node, "node", "", "node API URL (env TOKENIM_NODE, default "+defaultNodeURL+")")
	root.AddCommand(upCmd(g), nodeCmd(g), accountCmd(g), whoisCmd(g), sendCmd(g), inboxCmd(g), historyCmd(g), statusCmd(g), benchCmd(g), validatorCmd(g), testnetCmd(), fileCmd(g), policyCmd(g), groupCmd(g), verifyCmd(g), exportCmd(g), verifyExportCmd(), uiCmd(g))
	if err := root.Execute(); err != nil {
		printError(err)
		os.Exit(1)
	}
}

// hinted is an error with advice for the user.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hint: hint}
}

func printError(err error) {
	fmt.Fprintf(os.Stderr, "tokenim: error: %v\n", err)
	var h *hinted
	if errors.As(err, &h) && h.hint != "" {
		fmt.Fprintf(os.Stderr, "tokenim: hint: %s\n", h.hint)
	} else if hint := hintFor(err); hint != "" {
		fmt.Fprintf(os.Stderr, "tokenim: hint: %s\n", hint)
	}
}
