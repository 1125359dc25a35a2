package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/cometbft/cometbft/p2p"
	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/nodeauth"
	"github.com/tokenim/tokenim/internal/relay"
)

// Version is the node software version reported by Status.
const Version = "0.1.0"

// API limits.
const (
	MaxRequestBytes     = 8 << 20
	MaxEnvelopesPerSend = relay.MaxAppendEnvelopes // a 1,000-member group's post in one request
	MaxPrekeysPerUpload = 200
	readBatch           = 256
	// MaxReceiveGroups caps the groups a Receive request names.
	MaxReceiveGroups = 1024
)

func (n *Node) serveAPI(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("API listen on %s: %w", addr, err)
	}
	n.apiLn = ln
	n.apiURL = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	opts := []connect.HandlerOption{
		connect.WithReadMaxBytes(MaxRequestBytes),
		connect.WithCodec(strictProto{}),
		// No gzip: envelopes are ciphertext (incompressible), and compressing
		// next to secrets invites length side channels.
		connect.WithCompression("gzip", nil, nil),
		connect.WithInterceptors(n.metrics.interceptor()),
	}
	mux.Handle(tokenimv1connect.NewNodeServiceHandler(&nodeService{n}, opts...))
	mux.Handle(tokenimv1connect.NewRelayServiceHandler(&relayService{n}, opts...))
	mux.Handle(tokenimv1connect.NewPeerServiceHandler(&peerService{n}, opts...))
	mux.Handle(tokenimv1connect.NewBlobServiceHandler(&blobService{n}, opts...))
	mux.HandleFunc("GET /healthz", n.healthz)
	mux.Handle("GET /metrics", n.metrics.handler())
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	n.api = &http.Server{Handler: mux, Protocols: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := n.api.Serve(readBufferedListener{ln}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("API server stopped", "err", err)
		}
	}()
	return nil
}

func (n *Node) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "ok height=%d chain=%s\n", n.Height(), n.chainID)
}

type nodeService struct{ n *Node }

func (s *nodeService) Status(context.Context, *connect.Request[tokenimv1.StatusRequest]) (*connect.Response[tokenimv1.StatusResponse], error) {
	r, h := s.n.app.Committed()
	resp := &tokenimv1.StatusResponse{ChainId: s.n.chainID, Height: h, NodeId: s.n.nodeID, ApiUrl: s.n.apiURL, Version: Version, P2PAddress: s.n.P2PAddress()}
	if p, err := ledger.GetParams(r); err == nil {
		resp.PowDifficulty = p.PowDifficulty
	}
	if h > 0 {
		if meta := s.n.comet.BlockStore().LoadBlockMeta(h); meta != nil {
			resp.AppHash = meta.Header.AppHash
		}
	}
	s.n.liveness(resp)
	return connect.NewResponse(resp), nil
}

// liveness fills in what tells a stalled chain from an idle one: the last
// block, what waits in the mempool, and the validators' power this node
// reaches.
func (n *Node) liveness(resp *tokenimv1.StatusResponse) {
	resp.LastBlockMs = n.committedAt.Load() / int64(time.Millisecond)
	resp.MempoolTxs = int32(n.comet.Mempool().Size())
	peers := n.comet.Switch().Peers()
	resp.Peers = int32(peers.Size())
	resp.CatchingUp = n.CatchingUp()
	perPage := 100
	vals, err := n.rpcEnv.Validators(&rpctypes.Context{}, nil, nil, &perPage)
	if err != nil {
		return
	}
	reg := n.registry()
	byKey := map[string]string{} // validator key → its registered node
	for _, rec := range reg.nodes {
		byKey[string(rec.ValidatorKey)] = rec.NodeId
	}
	for _, v := range vals.Validators {
		resp.Validators++
		resp.ValidatorPower += v.VotingPower
		key := v.PubKey.Bytes()
		id, registered := byKey[string(key)]
		if bytes.Equal(key, n.validatorKey) || registered && peers.Has(p2p.ID(id)) {
			resp.ReachableValidators++
			resp.ReachablePower += v.VotingPower
		}
	}
}

func (s *nodeService) BroadcastTx(ctx context.Context, req *connect.Request[tokenimv1.BroadcastTxRequest]) (*connect.Response[tokenimv1.BroadcastTxResponse], error) {
	if len(req.Msg.Tx) == 0 || len(req.Msg.Tx) > ledger.MaxTxBytes {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("tx of %d bytes (cap %d)", len(req.Msg.Tx), ledger.MaxTxBytes))
	}
	res, err := s.n.broadcastCommit(ctx, req.Msg.Tx)
	switch {
	case errors.Is(err, errTxSeen):
		return connect.NewResponse(&tokenimv1.BroadcastTxResponse{Code: ledger.CodeBadSequence, Log: err.Error()}), nil
	case errors.Is(err, errBroadcastBusy):
		return nil, connect.NewError(connect.CodeResourceExhausted, err)
	case errors.Is(err, errNoBlock):
		ce := connect.NewError(connect.CodeUnavailable, err)
		ce.Meta().Set(relay.ReasonHeader, relay.ReasonNoBlock)
		return nil, ce
	case err != nil:
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("broadcast: %w", err))
	}
	return connect.NewResponse(&tokenimv1.BroadcastTxResponse{Hash: res.Hash, Height: res.Height, Code: res.Code, Log: res.Log}), nil
}

func (s *nodeService) GetAccount(_ context.Context, req *connect.Request[tokenimv1.GetAccountRequest]) (*connect.Response[tokenimv1.GetAccountResponse], error) {
	acct, h, err := s.n.account(req.Msg.Handle)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tokenimv1.GetAccountResponse{Account: acct, Height: h}), nil
}

// account reads a committed account, with API errors.
func (n *Node) account(handle string) (*tokenimv1.Account, int64, error) {
	h, err := ledger.NormalizeHandle(handle)
	if err != nil {
		return nil, 0, connect.NewError(connect.CodeInvalidArgument, err)
	}
	r, height := n.app.Committed()
	acct, err := ledger.GetAccount(r, h)
	switch {
	case errors.Is(err, ledger.ErrUnknownAccount):
		return nil, height, connect.NewError(connect.CodeNotFound, err)
	case err != nil:
		return nil, height, connect.NewError(connect.CodeInternal, err)
	}
	return acct, height, nil
}

// caller returns the handle of the request's session.
func (n *Node) caller(h http.Header) (string, error) {
	const prefix = "Bearer "
	v := h.Get("Authorization")
	if len(v) <= len(prefix) || v[:len(prefix)] != prefix {
		return "", connect.NewError(connect.CodeUnauthenticated, nodeauth.ErrUnauthenticated)
	}
	handle, err := n.auth.Handle(v[len(prefix):])
	if err != nil {
		return "", connect.NewError(connect.CodeUnauthenticated, err)
	}
	return handle, nil
}
