package ledger

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// MaxConsistencyProof caps AnchorLog.consistency: a consistency proof has at
// most 2·log2(size) hashes.
const MaxConsistencyProof = 128

// anchorsModule owns the anchors of the nodes' message logs:
// la/<node_id> → LogAnchor, the node's latest anchor. A new anchor must grow
// the log and prove, with an RFC 6962 consistency proof, that the anchored
// tree is a prefix of the new one: a node cannot rewrite what it anchored.
type anchorsModule struct{}

func anchorKey(nodeID string) []byte { return []byte("la/" + nodeID) }

func (anchorsModule) Name() string { return "anchors" }

func (anchorsModule) Handles(body *tokenimv1.TxBody) bool {
	_, ok := body.Msg.(*tokenimv1.TxBody_AnchorLog)
	return ok
}

// Authenticate: signed by a registered node with its node key.
func (anchorsModule) Authenticate(r Reader, body *tokenimv1.TxBody) (Signer, error) {
	return authenticateNode(r, body)
}

func (anchorsModule) Validate(ctx *Context, body *tokenimv1.TxBody) error {
	_, err := checkAnchor(ctx.KV, ctx.Signer.Node, body.GetAnchorLog())
	return err
}

func (anchorsModule) Apply(ctx *Context, body *tokenimv1.TxBody) error {
	a := body.GetAnchorLog()
	if _, err := checkAnchor(ctx.KV, ctx.Signer.Node, a); err != nil {
		return err
	}
	return setProto(ctx.KV, anchorKey(ctx.Signer.Node.NodeId), &tokenimv1.LogAnchor{
		NodeId: ctx.Signer.Node.NodeId, TreeSize: a.TreeSize, RootHash: a.RootHash,
		Height: ctx.Height, TimeMs: ctx.TimeMs,
	})
}

// checkAnchor validates a against the node's previous anchor.
func checkAnchor(r Reader, node *tokenimv1.NodeRecord, a *tokenimv1.AnchorLog) (*tokenimv1.LogAnchor, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidAnchor, fmt.Sprintf(format, args...))
	}
	if node == nil {
		return nil, fmt.Errorf("%w: anchor from an unregistered node", ErrUnknownNode)
	}
	if !bytes.Equal(a.NodeKey, node.NodeKey) {
		return nil, bad("node_key is not node %s's registered key", node.NodeId)
	}
	if len(a.RootHash) != sha256.Size {
		return nil, bad("root_hash of %d bytes", len(a.RootHash))
	}
	if len(a.Consistency) > MaxConsistencyProof {
		return nil, bad("consistency proof of %d hashes", len(a.Consistency))
	}
	prev, err := GetAnchor(r, node.NodeId)
	if err != nil {
		return nil, err
	}
	var prevSize uint64
	var prevRoot []byte
	if prev != nil {
		prevSize, prevRoot = prev.TreeSize, prev.RootHash
	}
	if a.PrevSize != prevSize {
		return nil, bad("prev_size %d, but the node's anchored tree has %d leaves", a.PrevSize, prevSize)
	}
	if a.TreeSize <= prevSize {
		return nil, bad("tree_size %d does not grow the anchored %d", a.TreeSize, prevSize)
	}
	if prevSize == 0 {
		if len(a.Consistency) != 0 {
			return nil, bad("a first anchor carries no consistency proof")
		}
		return prev, nil
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, prevSize, a.TreeSize, a.Consistency, prevRoot, a.RootHash); err != nil {
		return nil, bad("not consistent with the anchor of %d leaves: %v", prevSize, err)
	}
	return prev, nil
}

// GetAnchor reads a node's latest anchor; nil if it has none.
func GetAnchor(r Reader, nodeID string) (*tokenimv1.LogAnchor, error) {
	if !validNodeID(nodeID) {
		return nil, fmt.Errorf("%w: node id %q", ErrInvalidNode, nodeID)
	}
	var a tokenimv1.LogAnchor
	ok, err := getProto(r, anchorKey(nodeID), &a)
	if err != nil || !ok {
		return nil, err
	}
	return &a, nil
}
