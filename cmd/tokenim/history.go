package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/ledger"
)

func historyCmd(g *globals) *cobra.Command {
	var asJSON, offline bool
	var limit int
	cmd := &cobra.Command{
		Use:   "history [@HANDLE|GROUP] [-n N] [--json]",
		Short: "Show your conversations, sent and received, with each message's state and id (for verify), or one conversation",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var conv func(*client.Message) bool
			if len(args) == 1 {
				var err error
				if conv, err = conversation(args[0]); err != nil {
					return err
				}
			}
			c, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if !offline {
				if _, err := c.Sync(cmd.Context()); errors.Is(err, client.ErrNodeUnreachable) {
					fmt.Fprintf(os.Stderr, "tokenim: the node is unreachable; showing the local history (%v)\n", err)
				} else if err != nil {
					return err
				}
			}
			hist, err := c.History(conv)
			if err != nil {
				return err
			}
			if limit > 0 && len(hist) > limit {
				hist = hist[len(hist)-limit:]
			}
			now := time.Now()
			for _, m := range hist {
				printHistory(os.Stdout, m, now, asJSON)
			}
			if len(hist) == 0 && !asJSON {
				fmt.Fprintln(os.Stderr, "no messages")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per message")
	cmd.Flags().BoolVar(&offline, "offline", false, "do not fetch new messages from the node first")
	cmd.Flags().IntVarP(&limit, "limit", "n", 0, "show only the last N messages")
	return cmd
}

// conversation is a filter for one conversation: "@bob" (1:1) or a group's
// bare name.
func conversation(arg string) (func(*client.Message) bool, error) {
	if h, ok := strings.CutPrefix(arg, "@"); ok {
		peer, err := ledger.NormalizeHandle(h)
		if err != nil {
			return nil, err
		}
		return func(m *client.Message) bool {
			return m.Group == "" && (m.Outgoing && m.To == peer || !m.Outgoing && m.From == peer)
		}, nil
	}
	if err := ledger.CheckGroupName(arg); err != nil {
		return nil, withHint(err, "accounts take an @ (`history @bob`); a bare name is a group")
	}
	return func(m *client.Message) bool { return m.Group == arg }, nil
}

// printHistory writes one message of the history: when, where, who, what,
// and for yours its state; then its id and, under a retention, when it
// goes.
func printHistory(w io.Writer, m client.Message, now time.Time, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(m)
		fmt.Fprintln(w, string(b))
		return
	}
	when := m.SentAt
	if when.IsZero() {
		when = m.ReceivedAt
	}
	who := m.From
	switch {
	case m.Group != "":
		who = "[" + m.Group + "] " + m.From
	case m.Outgoing:
		who = m.From + " → " + m.To
	}
	var notes []string
	switch {
	case m.Anchor != nil:
		notes = append(notes, client.StateAnchored) // proven by verify
	case m.Outgoing:
		notes = append(notes, m.State)
	}
	if !m.ExpiresAt.IsZero() {
		notes = append(notes, "deletes in "+roughly(m.ExpiresAt.Sub(now)))
	}
	notes = append(notes, "id "+m.ID)
	fmt.Fprintf(w, "%s  %s: %s  (%s)\n", when.Local().Format("2006-01-02 15:04:05"), who, bodyOf(m), strings.Join(notes, ", "))
}

// roughly writes a duration the way people read one: 30d, 23h59m, 4m5s, 9s.
func roughly(d time.Duration) string {
	switch d = d.Round(time.Second); {
	case d < 0:
		return "0s"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return d.String()
}
