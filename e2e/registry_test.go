package e2e

import (
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
)

// A node registers itself on chain (node id, API URL, validator key), and a
// client's node becomes its home node.
func TestNodeRegistersItselfAndBecomesHome(t *testing.T) {
	ctx := ctxT(t)
	nodeAPI := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, tn.url())
	var nodes []*tokenimv1.NodeRecord
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		res, err := nodeAPI.ListNodes(ctx, connect.NewRequest(&tokenimv1.ListNodesRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if nodes = res.Msg.Nodes; len(nodes) > 0 {
			break
		}
	}
	if len(nodes) != 1 || nodes[0].NodeId != tn.n.NodeID() || nodes[0].ApiUrl != tn.url() || len(nodes[0].ValidatorKey) != 32 {
		t.Fatalf("registry: %v", nodes)
	}
	c, _ := newUser(t, "kate")
	home, err := c.HomeNodes(ctx)
	if err != nil || len(home) != 1 || home[0] != tn.n.NodeID() {
		t.Fatalf("home nodes %v, %v", home, err)
	}
}
