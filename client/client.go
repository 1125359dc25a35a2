package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/keystore"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/nodeauth"
	"github.com/tokenim/tokenim/internal/relay"
	"github.com/tokenim/tokenim/internal/signalstore"
)

// DefaultNodeURL is the node API URL used when Config.NodeURL is empty: the
// address `tokenim up` listens on.
const DefaultNodeURL = "http://127.0.0.1:8420"

// Config says where an account lives and which node it uses.
type Config struct {
	// Home is the TokenIM home; the client's files are in Home/client.
	Home string
	// NodeURL is the node API base URL (default DefaultNodeURL).
	NodeURL string
	// Passphrase unlocks (or, for Create, protects) the keystore.
	Passphrase []byte
	// HTTPClient overrides the HTTP client (tests, proxies).
	HTTPClient *http.Client
	// KeystoreWorkFactor is age's scrypt work factor for Create (0: default).
	// Tests lower it; users should not.
	KeystoreWorkFactor int
}

// Dir is the client directory of a home.
func Dir(home string) string { return filepath.Join(home, "client") }

// Client is one unlocked account connected to a node. Its methods are safe
// for concurrent use.
type Client struct {
	cfg     Config
	secrets *keystore.Secrets
	store   *signalstore.Store
	unlock  func() error
	node    tokenimv1connect.NodeServiceClient
	relay   tokenimv1connect.RelayServiceClient
	blob    tokenimv1connect.BlobServiceClient

	mu      sync.Mutex // serializes Signal state changes (encrypt, decrypt)
	tokMu   sync.Mutex
	token   string
	tokenTo time.Time
	nodeID  string // the node's id, learnt when authenticating
	homeOK  bool   // the node is (made) one of this account's home nodes

	retriedMu sync.Mutex
	retried   []Message // waiting group messages decrypted later (pending.go)

	justRegistered bool // Open finished a pending registration (account.go)

	outMu      sync.Mutex // one outbox flush at a time (outbox.go)
	outboxHook atomic.Pointer[func(Message)]

	trustMu sync.Mutex // one move of the trusted header at a time (trust.go)

	epochsMu sync.Mutex
	epochs   map[string]*tokenimv1.GroupRecord // closed epochs' proven final records, by group/epoch (group.go)

	proven sync.Map // handle → provenKey: identity keys proven lately (identity.go)
}

// Handle is the account's handle.
func (c *Client) Handle() string { return c.secrets.Handle }

// NodeURL is the node this client talks to.
func (c *Client) NodeURL() string { return c.cfg.NodeURL }

// Exists reports whether home has an account.
func Exists(home string) bool { return keystore.Exists(Dir(home)) }

// Open unlocks the account in cfg.Home.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if !keystore.Exists(Dir(cfg.Home)) {
		return nil, fmt.Errorf("%w: %s", ErrNoAccount, Dir(cfg.Home))
	}
	if len(cfg.Passphrase) == 0 {
		return nil, ErrNoPassphrase
	}
	unlock, err := keystore.Lock(Dir(cfg.Home))
	if err != nil {
		return nil, err
	}
	s, err := keystore.Load(Dir(cfg.Home), cfg.Passphrase)
	if err != nil {
		unlock()
		return nil, err
	}
	c, err := open(cfg, s, unlock)
	if err != nil {
		return nil, err
	}
	if _, pending, err := c.store.Get(bucketMeta, metaRegPending); err != nil || pending {
		if err == nil {
			err = c.finishRegistration(ctx)
		}
		if err != nil && !errors.Is(err, errAfterRegistration) {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func open(cfg Config, s *keystore.Secrets, unlock func() error) (*Client, error) {
	st, err := signalstore.Open(filepath.Join(Dir(cfg.Home), "signal.db"), s.StorageKey, s.IdentityKeyPair, s.RegistrationID)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("open client store: %w", err)
	}
	c := dial(cfg)
	c.secrets, c.store, c.unlock = s, st, unlock
	return c, nil
}

// dial returns a Client with node connections only (no account yet).
func dial(cfg Config) *Client {
	if cfg.NodeURL == "" {
		cfg.NodeURL = DefaultNodeURL
	}
	cfg.NodeURL = strings.TrimRight(cfg.NodeURL, "/")
	hc := cfg.HTTPClient
	if hc == nil {
		hc = DefaultHTTPClient()
	}
	return &Client{
		cfg:   cfg,
		node:  tokenimv1connect.NewNodeServiceClient(hc, cfg.NodeURL),
		relay: tokenimv1connect.NewRelayServiceClient(hc, cfg.NodeURL),
		blob:  tokenimv1connect.NewBlobServiceClient(hc, cfg.NodeURL),
	}
}

// Lookup returns the chain's record of a handle without an account.
func Lookup(ctx context.Context, cfg Config, handle string) (*tokenimv1.Account, error) {
	return dial(cfg).Lookup(ctx, handle)
}

// NodeStatus asks a node for its status without an account.
func NodeStatus(ctx context.Context, cfg Config) (*tokenimv1.StatusResponse, error) {
	return dial(cfg).Status(ctx)
}

// DefaultHTTPClient is a new HTTP client as the SDK makes one when Config
// has none: to an http:// node it speaks HTTP/1.1 (a live Receive stream,
// and its AckStream, each hold a connection).
func DefaultHTTPClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP1(true)
	t := &http.Transport{
		Protocols:   p,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	return &http.Client{Transport: t}
}

// Close locks the account again.
func (c *Client) Close() error {
	err := c.store.Close()
	return errors.Join(err, c.unlock())
}

// connectionFailed reports whether err is the connection failing under a
// call (the node went away in the middle of it: a broken pipe, a reset),
// which the RPC layer may report as canceled; not the caller's own
// cancellation.
func connectionFailed(err error) bool {
	var op *net.OpError
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
		(errors.As(err, &op) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET))
}

// netErr turns transport failures into ErrNodeUnreachable.
func (c *Client) netErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if connect.CodeOf(err) == connect.CodeUnavailable || connectionFailed(err) {
		var ce *connect.Error
		if errors.As(err, &ce) {
			switch ce.Meta().Get(relay.ReasonHeader) {
			case relay.ReasonReplicas:
				return fmt.Errorf("%s: %w (%s)", op, ErrNotStored, ce.Message())
			case relay.ReasonNoBlock:
				return fmt.Errorf("%s: %w (%s)", op, ErrNotCommitted, ce.Message())
			}
		}
		return fmt.Errorf("%s: %w: %s (%v)", op, ErrNodeUnreachable, c.cfg.NodeURL, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// authed adds the session token to a request, authenticating first if
// needed.
func (c *Client) authed(ctx context.Context, h http.Header) error {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if c.token == "" || time.Now().After(c.tokenTo) {
		if err := c.authenticate(ctx); err != nil {
			return err
		}
	}
	h.Set("Authorization", "Bearer "+c.token)
	return nil
}

func (c *Client) authenticate(ctx context.Context) error {
	ch, err := c.relay.Challenge(ctx, connect.NewRequest(&tokenimv1.ChallengeRequest{Handle: c.Handle()}))
	if err != nil {
		return c.netErr("authenticate", err)
	}
	nonce, nodeID := ch.Msg.Nonce, ch.Msg.NodeId
	sig := nodeauth.Sign(c.secrets.AccountKey, nodeID, nonce)
	res, err := c.relay.Authenticate(ctx, connect.NewRequest(&tokenimv1.AuthenticateRequest{Handle: c.Handle(), Nonce: nonce, Signature: sig}))
	if err != nil {
		return c.netErr("authenticate", err)
	}
	c.token = res.Msg.Token
	c.nodeID = nodeID
	// Renew a minute early.
	c.tokenTo = time.UnixMilli(res.Msg.ExpiresAtMs).Add(-time.Minute)
	return nil
}

// connectedNode authenticates if needed and returns the node's id.
func (c *Client) connectedNode(ctx context.Context) (string, error) {
	if err := c.authed(ctx, http.Header{}); err != nil {
		return "", err
	}
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	return c.nodeID, nil
}

// dropToken forgets the session (after the node said Unauthenticated, e.g.
// because it restarted).
func (c *Client) dropToken() {
	c.tokMu.Lock()
	c.token = ""
	c.tokMu.Unlock()
}

// call runs an authenticated unary call, re-authenticating once if the node
// forgot the session.
func call[Req, Res any](ctx context.Context, c *Client, op string, req *Req, fn func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error)) (*Res, error) {
	for attempt := 0; ; attempt++ {
		r := connect.NewRequest(req)
		if err := c.authed(ctx, r.Header()); err != nil {
			return nil, err
		}
		res, err := fn(ctx, r)
		if connect.CodeOf(err) == connect.CodeUnauthenticated && attempt == 0 {
			c.dropToken()
			continue
		}
		if err != nil {
			return nil, c.netErr(op, err)
		}
		return res.Msg, nil
	}
}

// Status asks the node for its status.
func (c *Client) Status(ctx context.Context) (*tokenimv1.StatusResponse, error) {
	res, err := c.node.Status(ctx, connect.NewRequest(&tokenimv1.StatusRequest{}))
	if err != nil {
		return nil, c.netErr("status", err)
	}
	return res.Msg, nil
}

// Lookup returns the chain's record of a handle.
func (c *Client) Lookup(ctx context.Context, handle string) (*tokenimv1.Account, error) {
	return lookup(ctx, c.node, c.netErr, handle)
}

func lookup(ctx context.Context, node tokenimv1connect.NodeServiceClient, netErr func(string, error) error, handle string) (*tokenimv1.Account, error) {
	h, err := ledger.NormalizeHandle(handle)
	if err != nil {
		return nil, err
	}
	res, err := node.GetAccount(ctx, connect.NewRequest(&tokenimv1.GetAccountRequest{Handle: h}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return nil, fmt.Errorf("%w: @%s", ErrUnknownHandle, h)
	}
	if err != nil {
		return nil, netErr("look up @"+h, err)
	}
	if res.Msg.Account.GetHandle() != h {
		return nil, fmt.Errorf("look up @%s: node answered for %q", h, res.Msg.Account.GetHandle())
	}
	return res.Msg.Account, nil
}
