package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/node"
	"golang.org/x/term"
)

const defaultNodeURL = node.DefaultAPIURL

// homeDir resolves --home, then TOKENIM_HOME, then ~/.tokenim.
func (g *globals) homeDir() (string, error) {
	if g.home != "" {
		return g.home, nil
	}
	if h := os.Getenv("TOKENIM_HOME"); h != "" {
		return h, nil
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", withHint(err, "set TOKENIM_HOME or pass --home")
	}
	return filepath.Join(u, ".tokenim"), nil
}

// nodeURL resolves --node, then TOKENIM_NODE, then the default.
func (g *globals) nodeURL() string {
	if g.node != "" {
		return g.node
	}
	if u := os.Getenv("TOKENIM_NODE"); u != "" {
		return u
	}
	return defaultNodeURL
}

var errNoPassphrase = errors.New("no passphrase: TOKENIM_PASSPHRASE is not set and there is no terminal to ask on")

// passphrase reads TOKENIM_PASSPHRASE or prompts on the terminal; confirm
// asks twice (for a new keystore).
func passphrase(confirm bool) ([]byte, error) {
	if p := os.Getenv("TOKENIM_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, withHint(errNoPassphrase, "export TOKENIM_PASSPHRASE=… or run in a terminal")
	}
	fmt.Fprint(os.Stderr, "Passphrase: ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, client.ErrNoPassphrase
	}
	if confirm {
		fmt.Fprint(os.Stderr, "Repeat passphrase: ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, err
		}
		if string(p) != string(q) {
			return nil, errors.New("the passphrases differ")
		}
	}
	return p, nil
}

// config builds a client.Config from the globals (no passphrase yet).
func (g *globals) config() (client.Config, error) {
	home, err := g.homeDir()
	if err != nil {
		return client.Config{}, err
	}
	return client.Config{Home: home, NodeURL: g.nodeURL()}, nil
}

// hintFor suggests a fix for common errors.
func hintFor(err error) string {
	switch {
	case errors.Is(err, client.ErrQueued):
		return "the message is kept, encrypted on this device; it goes out with your next send or inbox (`tokenim history` shows it as queued until then)"
	case errors.Is(err, client.ErrRegistrationPending):
		return "the keys are kept in this home; run the same `tokenim account create` (or any command) with this home later, and it finishes the registration"
	case errors.Is(err, client.ErrNotCommitted):
		return "the chain makes no blocks now (more than a third of the validators' power offline?); the transaction may still commit when they are back, so check (`tokenim group show`, `whois`) before sending it again"
	case errors.Is(err, client.ErrNotStored):
		return "the recipient's mailbox is kept on nodes that are down; try again when they are back"
	case errors.Is(err, client.ErrNodeUnreachable):
		return "is a node running? start one with `tokenim up`, or point --node / TOKENIM_NODE at one"
	case errors.Is(err, client.ErrNoAccount):
		return "create one with `tokenim account create HANDLE` (or set --home / TOKENIM_HOME to the home that has it)"
	case errors.Is(err, client.ErrWrongPassphrase):
		return "check TOKENIM_PASSPHRASE"
	case errors.Is(err, client.ErrLocked):
		return "another tokenim process is using this home; stop it first"
	case errors.Is(err, ledger.ErrUnknownAccount):
		return "check the spelling; `tokenim whois @HANDLE` looks a handle up"
	case errors.Is(err, ledger.ErrHandleTaken):
		return "pick another handle"
	case errors.Is(err, ledger.ErrInvalidHandle):
		return "handles are 3-32 characters: a-z, 0-9 and _"
	case errors.Is(err, client.ErrTooLarge):
		return fmt.Sprintf("a text message holds at most %d bytes", client.MaxTextBytes)
	case errors.Is(err, client.ErrUnknownGroup):
		return "accounts take an @ (`send @bob …`); a bare name is a group"
	case errors.Is(err, client.ErrDenied):
		return "the group's policy refused it; `tokenim group show NAME` shows your role"
	case errors.Is(err, client.ErrFileTooLarge):
		return fmt.Sprintf("files are limited to %d GiB", client.MaxFileSize>>30)
	case errors.Is(err, client.ErrFileCorrupt):
		return "no replica served an intact copy; try again later"
	case errors.Is(err, client.ErrNoFile):
		return "`tokenim inbox` shows each file message with the `tokenim file get ID` command that downloads it"
	case errors.Is(err, node.ErrNotInitialized):
		return "run `tokenim node init` first, or `tokenim up`, which does both"
	}
	return ""
}
