package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/codec"
	"google.golang.org/protobuf/proto"
)

// Peer request headers and limits.
const (
	hdrPeerNode    = "Tokenim-Node"
	hdrPeerTime    = "Tokenim-Time"
	hdrPeerSig     = "Tokenim-Signature"
	peerClockSkew  = 5 * time.Minute
	peerCallTimout = 5 * time.Second
)

var errPeerAuth = errors.New("peer request not signed by a registered node")

// peerMessage is what a node signs for a peer request.
func peerMessage(procedure string, ms int64, req proto.Message) ([]byte, error) {
	b, err := codec.Marshal(req)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(b)
	m := []byte("tokenim/peer/v1\x00" + procedure + "\x00" + strconv.FormatInt(ms, 10) + "\x00")
	return append(m, h[:]...), nil
}

// peerSigner is a client interceptor that signs every peer request.
type peerSigner struct {
	nodeID string
	key    ed25519.PrivateKey
}

func (s peerSigner) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		msg, ok := req.Any().(proto.Message)
		if !ok {
			return nil, fmt.Errorf("peer: %T is not a protobuf message", req.Any())
		}
		ms := time.Now().UnixMilli()
		m, err := peerMessage(req.Spec().Procedure, ms, msg)
		if err != nil {
			return nil, err
		}
		req.Header().Set(hdrPeerNode, s.nodeID)
		req.Header().Set(hdrPeerTime, strconv.FormatInt(ms, 10))
		req.Header().Set(hdrPeerSig, base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, m)))
		return next(ctx, req)
	}
}

func (peerSigner) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (peerSigner) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// peerCaller verifies a peer request and returns the calling node's id.
func (n *Node) peerCaller(procedure string, h http.Header, msg proto.Message) (string, error) {
	id := h.Get(hdrPeerNode)
	rec, ok := n.registry().nodes[id]
	if !ok {
		return "", connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("%w: unknown node %q", errPeerAuth, id))
	}
	ms, err := strconv.ParseInt(h.Get(hdrPeerTime), 10, 64)
	if err != nil || time.Since(time.UnixMilli(ms)).Abs() > peerClockSkew {
		return "", connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("%w: time missing or skewed", errPeerAuth))
	}
	sig, err := base64.StdEncoding.DecodeString(h.Get(hdrPeerSig))
	m, merr := peerMessage(procedure, ms, msg)
	if err != nil || merr != nil || len(rec.NodeKey) != ed25519.PublicKeySize || !ed25519.Verify(rec.NodeKey, m, sig) {
		return "", connect.NewError(connect.CodeUnauthenticated, errPeerAuth)
	}
	return id, nil
}

// peerClients caches one PeerService client per node API URL.
type peerClients struct {
	mu      sync.Mutex
	http    *http.Client
	signer  peerSigner
	clients map[string]tokenimv1connect.PeerServiceClient
}

func newPeerClients(nodeID string, key ed25519.PrivateKey) *peerClients {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &peerClients{
		http:    &http.Client{Transport: &http.Transport{Protocols: p, MaxIdleConnsPerHost: 64}},
		signer:  peerSigner{nodeID: nodeID, key: key},
		clients: map[string]tokenimv1connect.PeerServiceClient{},
	}
}

func (p *peerClients) get(apiURL string) tokenimv1connect.PeerServiceClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[apiURL]
	if !ok {
		c = tokenimv1connect.NewPeerServiceClient(p.http, apiURL, connect.WithInterceptors(p.signer))
		p.clients[apiURL] = c
	}
	return c
}

// sameBytes reports whether two ids are equal (for dedup bookkeeping).
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
