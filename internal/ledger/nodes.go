package ledger

import tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"

// ListNodes returns the registered nodes sorted by node id.
// (Placeholder until the nodes module lands: the registry is empty.)
func ListNodes(r Reader) ([]*tokenimv1.NodeRecord, error) {
	return nil, nil
}
