package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// nodeSignerPrefix starts TxBody.signer for transactions a node signs.
const nodeSignerPrefix = "node/"

// validatorProofDomain prefixes the message a validator key signs to bind
// itself to a node (RegisterNode.validator_signature).
const validatorProofDomain = "tokenim/validator-key/v1\x00"

// NodeID is a node's id: lowercase hex of SHA-256(node key)[:20], as
// CometBFT's p2p.PubKeyToID computes it.
func NodeID(pub ed25519.PublicKey) string {
	d := sha256.Sum256(pub)
	return hex.EncodeToString(d[:20])
}

// NodeSigner is TxBody.signer for a transaction signed by node nodeID.
func NodeSigner(nodeID string) string { return nodeSignerPrefix + nodeID }

// ValidatorProofMessage is what a validator key signs to prove, in
// RegisterNode.validator_signature, that node nodeID holds it.
func ValidatorProofMessage(chainID, nodeID string) []byte {
	return []byte(validatorProofDomain + chainID + "\x00" + nodeID)
}

// SignValidatorProof signs ValidatorProofMessage with the validator's
// consensus private key.
func SignValidatorProof(chainID, nodeID string, validatorKey ed25519.PrivateKey) []byte {
	return ed25519.Sign(validatorKey, ValidatorProofMessage(chainID, nodeID))
}

// validNodeID reports whether id has the form of a node id (40 lowercase
// hex digits); it is checked before an id becomes part of a state key.
func validNodeID(id string) bool {
	if len(id) != 2*20 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// GetNode reads a node's registry record: ErrInvalidNode for a malformed
// id, ErrUnknownNode if it is not registered.
func GetNode(r Reader, id string) (*tokenimv1.NodeRecord, error) {
	rec, err := lookupNode(r, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownNode, id)
	}
	return rec, nil
}

// lookupNode is GetNode returning nil, nil for an unregistered node.
func lookupNode(r Reader, id string) (*tokenimv1.NodeRecord, error) {
	if !validNodeID(id) {
		return nil, fmt.Errorf("%w: node id %q is not 40 lowercase hex digits", ErrInvalidNode, id)
	}
	var rec tokenimv1.NodeRecord
	ok, err := getProto(r, nodeKey(id), &rec)
	if err != nil || !ok {
		return nil, err
	}
	return &rec, nil
}

// ListNodes returns the registered nodes sorted by node id.
func ListNodes(r Reader) ([]*tokenimv1.NodeRecord, error) {
	idx, err := getNodeIndex(r)
	if err != nil {
		return nil, err
	}
	out := make([]*tokenimv1.NodeRecord, 0, len(idx.NodeIds))
	for _, id := range idx.NodeIds {
		rec, err := GetNode(r, id)
		if err != nil {
			return nil, fmt.Errorf("%w: indexed node: %v", ErrInternal, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func getNodeIndex(r Reader) (*tokenimv1.NodeIndex, error) {
	var idx tokenimv1.NodeIndex
	if _, err := getProto(r, keyNodeIndex, &idx); err != nil {
		return nil, err
	}
	return &idx, nil
}

// authenticateNode finds the node that signs body: TxBody.signer must be
// NodeSigner of a registered node.
func authenticateNode(r Reader, body *tokenimv1.TxBody) (Signer, error) {
	id, ok := strings.CutPrefix(body.Signer, nodeSignerPrefix)
	if !ok {
		return Signer{}, fmt.Errorf("%w: signer %q is not node/<node_id>", ErrInvalidNode, body.Signer)
	}
	rec, err := GetNode(r, id)
	if err != nil {
		return Signer{}, err
	}
	return Signer{Key: rec.NodeKey, Node: rec}, nil
}

// nodesModule owns the node registry (prefix n/): RegisterNode.
type nodesModule struct{}

func (nodesModule) Name() string { return "nodes" }

func (nodesModule) Handles(body *tokenimv1.TxBody) bool {
	_, ok := body.Msg.(*tokenimv1.TxBody_RegisterNode)
	return ok
}

// Authenticate: a node's first RegisterNode is signed by the key it
// registers; later ones by the registered key.
func (nodesModule) Authenticate(r Reader, body *tokenimv1.TxBody) (Signer, error) {
	reg := body.GetRegisterNode()
	if body.Signer != NodeSigner(reg.GetNodeId()) {
		return Signer{}, fmt.Errorf("%w: signer %q registers node %q", ErrInvalidNode, body.Signer, reg.GetNodeId())
	}
	rec, err := lookupNode(r, reg.GetNodeId())
	if err != nil {
		return Signer{}, err
	}
	if rec == nil {
		return Signer{Key: reg.GetNodeKey()}, nil
	}
	return Signer{Key: rec.NodeKey, Node: rec}, nil
}

func (nodesModule) Validate(ctx *Context, body *tokenimv1.TxBody) error {
	reg := body.GetRegisterNode()
	if len(reg.NodeKey) != ed25519.PublicKeySize || NodeID(reg.NodeKey) != reg.NodeId {
		return fmt.Errorf("%w: node_id %s is not the id of node_key", ErrInvalidNode, reg.NodeId)
	}
	if n := ctx.Signer.Node; n != nil && !bytes.Equal(n.NodeKey, reg.NodeKey) {
		return fmt.Errorf("%w: node %s is registered with another key", ErrInvalidNode, reg.NodeId)
	}
	if err := validateAPIURL(reg.ApiUrl); err != nil {
		return err
	}
	if err := validateValidatorKey(ctx.ChainID, reg); err != nil {
		return err
	}
	if ctx.Signer.Node != nil {
		return nil
	}
	idx, err := getNodeIndex(ctx.KV)
	if err != nil {
		return err
	}
	if len(idx.NodeIds) >= MaxNodes {
		return fmt.Errorf("%w: %d nodes", ErrRegistryFull, len(idx.NodeIds))
	}
	return nil
}

// validateAPIURL accepts an absolute http or https URL with a host and no
// credentials or fragment, of at most MaxAPIURL bytes.
func validateAPIURL(s string) error {
	if len(s) > MaxAPIURL {
		return fmt.Errorf("%w: api_url is %d bytes, cap %d", ErrInvalidNode, len(s), MaxAPIURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: api_url: %v", ErrInvalidNode, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
		u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%w: api_url %q is not an http(s) URL with a host", ErrInvalidNode, s)
	}
	return nil
}

// validateValidatorKey checks the optional validator key and the proof
// that the node holds it.
func validateValidatorKey(chainID string, reg *tokenimv1.RegisterNode) error {
	if len(reg.ValidatorKey) == 0 {
		if len(reg.ValidatorSignature) != 0 {
			return fmt.Errorf("%w: validator_signature without validator_key", ErrInvalidNode)
		}
		return nil
	}
	if len(reg.ValidatorKey) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: validator key is %d bytes, want %d", ErrInvalidKey, len(reg.ValidatorKey), ed25519.PublicKeySize)
	}
	if len(reg.ValidatorSignature) != ed25519.SignatureSize ||
		!ed25519.Verify(reg.ValidatorKey, ValidatorProofMessage(chainID, reg.NodeId), reg.ValidatorSignature) {
		return fmt.Errorf("%w: validator_signature does not verify with validator_key", ErrInvalidNode)
	}
	return nil
}

func (nodesModule) Apply(ctx *Context, body *tokenimv1.TxBody) error {
	reg := body.GetRegisterNode()
	rec := ctx.Signer.Node
	if rec == nil {
		rec = &tokenimv1.NodeRecord{NodeId: reg.NodeId, NodeKey: reg.NodeKey, RegisteredHeight: ctx.Height, Sequence: 1}
		idx, err := getNodeIndex(ctx.KV)
		if err != nil {
			return err
		}
		i, _ := slices.BinarySearch(idx.NodeIds, reg.NodeId)
		idx.NodeIds = slices.Insert(idx.NodeIds, i, reg.NodeId)
		if err := setProto(ctx.KV, keyNodeIndex, idx); err != nil {
			return err
		}
	}
	rec.ApiUrl, rec.ValidatorKey = reg.ApiUrl, reg.ValidatorKey
	return setProto(ctx.KV, nodeKey(rec.NodeId), rec)
}
