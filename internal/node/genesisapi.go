package node

import (
	"context"
	"fmt"
	"os"
	"strings"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
)

// Genesis serves genesis.json so another node can join this chain.
func (s *nodeService) Genesis(context.Context, *connect.Request[tokenimv1.GenesisRequest]) (*connect.Response[tokenimv1.GenesisResponse], error) {
	b, err := os.ReadFile(s.n.cometCfg.GenesisFile())
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("read genesis: %w", err))
	}
	return connect.NewResponse(&tokenimv1.GenesisResponse{GenesisJson: b, P2PAddress: s.n.P2PAddress()}), nil
}

// ListNodes serves the node registry.
func (s *nodeService) ListNodes(context.Context, *connect.Request[tokenimv1.ListNodesRequest]) (*connect.Response[tokenimv1.ListNodesResponse], error) {
	r, h := s.n.app.Committed()
	nodes, err := ledger.ListNodes(r)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(&tokenimv1.ListNodesResponse{Nodes: nodes, Height: h}), nil
}

// P2PAddress is the node's CometBFT p2p address, "id@host:port".
func (n *Node) P2PAddress() string {
	addr := n.cometCfg.P2P.ExternalAddress
	if addr == "" {
		addr = n.cometCfg.P2P.ListenAddress
	}
	addr = strings.TrimPrefix(addr, "tcp://")
	return n.nodeID + "@" + addr
}
