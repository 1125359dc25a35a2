package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/client"
)

func sendCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "send @HANDLE|GROUP TEXT|-  |  send @HANDLE|GROUP --file PATH",
		Short: "Send an end-to-end encrypted message (to @account or to a group by its bare name) or file; prints the message id",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" {
				if len(args) != 1 {
					return withHint(fmt.Errorf("--file takes one @account or group and no TEXT"), "tokenim send @bob --file ./report.pdf")
				}
				return sendFile(cmd, g, args[0], file)
			}
			if len(args) != 2 {
				return withHint(fmt.Errorf("no message text"), `tokenim send @bob "hello", or --file PATH`)
			}
			text := args[1]
			if text == "-" {
				b, err := io.ReadAll(io.LimitReader(os.Stdin, client.MaxTextBytes+1))
				if err != nil {
					return err
				}
				text = strings.TrimSuffix(string(b), "\n")
			}
			c, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			send := c.Send
			if !strings.HasPrefix(args[0], "@") {
				send = c.SendGroup // a bare name is a group
			}
			m, err := send(cmd.Context(), args[0], text)
			if m != nil {
				fmt.Println(m.ID) // also when queued: the id tracks it
			}
			return err
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "send this file (encrypted, chunked, with a progress bar)")
	return cmd
}

func sendFile(cmd *cobra.Command, g *globals, to, path string) error {
	c, err := g.open(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()
	update, wait := progressBar("upload")
	send := c.SendFile
	if !strings.HasPrefix(to, "@") {
		send = c.SendGroupFile // a bare name is a group
	}
	m, err := send(cmd.Context(), to, path, update)
	wait()
	if m != nil {
		fmt.Println(m.ID) // also when queued: the id tracks it
	}
	return err
}

func inboxCmd(g *globals) *cobra.Command {
	var asJSON, follow bool
	cmd := &cobra.Command{
		Use:   "inbox",
		Short: "Fetch, decrypt and show received messages",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			print := func(m client.Message) { printMessage(os.Stdout, m, asJSON) }
			// Fetch what waits on the node, then show the whole received history.
			if _, err := c.Sync(cmd.Context()); err != nil {
				return err
			}
			warnQueued(c)
			hist, err := c.History(func(m *client.Message) bool { return !m.Outgoing })
			if err != nil {
				return err
			}
			for _, m := range hist {
				print(m)
			}
			gaps, err := c.Gaps()
			if err != nil {
				return err
			}
			for _, gp := range gaps {
				printGap(gp, asJSON)
			}
			if !follow {
				return nil
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			return c.Listen(ctx, print)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per message")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing messages as they arrive")
	return cmd
}

// printGap warns about messages a sender numbered that never arrived.
func printGap(gp client.Gap, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(map[string]any{"gap": gp})
		fmt.Println(string(b))
		return
	}
	where := "to you"
	if gp.Group != "" {
		where = "in " + gp.Group
	}
	fmt.Printf("WARNING: %d message(s) from %s %s missing (their numbers %v): dropped by a node, or still on their way\n",
		len(gp.Missing), gp.From, where, gp.Missing)
}

// printMessage writes one received message to w. Protocol messages (a
// sender key, a request for one) are not shown, as the history and the web
// client do not show them.
func printMessage(w io.Writer, m client.Message, asJSON bool) {
	if m.State == client.StateControl {
		return
	}
	if asJSON {
		b, _ := json.Marshal(m)
		fmt.Fprintln(w, string(b))
		return
	}
	when := m.SentAt
	if m.State != client.StateReceived || when.IsZero() {
		when = m.ReceivedAt
	}
	where := ""
	if m.Group != "" {
		where = "[" + m.Group + "] "
	}
	fmt.Fprintf(w, "%s  %s%s: %s\n", when.Local().Format("2006-01-02 15:04:05"), where, m.From, bodyOf(m))
}

// bodyOf is how a message shows: its text, or what happened to it.
func bodyOf(m client.Message) string {
	switch m.State {
	case client.StateRejected:
		return "[REJECTED: the sender's identity key is not the chain's, the content is not what the envelope committed to, or a group key from a non-member]"
	case client.StateWaiting:
		return "[waiting for the sender's key; asked them to send it again]"
	case client.StateUndecryptable:
		return "[message could not be decrypted]"
	}
	text := m.Text
	if m.Notice {
		return "[" + text + "]" // an event of the conversation, not something written
	}
	if m.File != nil {
		text += "  → tokenim file get " + m.ID
	}
	return text
}

// warnQueued tells on stderr how many of your messages wait in the outbox.
func warnQueued(c *client.Client) {
	if n, err := c.Queued(); err == nil && n > 0 {
		fmt.Fprintf(os.Stderr, "%d of your messages wait in the outbox: the network cannot take them yet; they go out with your next send or inbox (`tokenim history` shows them as queued)\n", n)
	}
}
