package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/placement"
)

// ErrNoQuorum: fewer than a majority of a mailbox's replicas stored an
// envelope. The sender retries with the same envelope id; replicas that did
// store it dedup the retry.
var ErrNoQuorum = errors.New("envelope not stored on a majority of its replicas")

// store puts envelopes (already admitted: to/from/time set) on their
// mailboxes' replicas and returns once each is on a quorum of them. The
// rule: an envelope is acknowledged to its sender when a majority of its
// replica set (R rendezvous winners plus the recipient's home nodes) has
// it on disk; the others get it in the background, or pull it later.
func (n *Node) store(ctx context.Context, envs []*tokenimv1.Envelope) (dup []bool, err error) {
	groups := map[string][]int{} // replica set → envelope indexes
	sets := map[string][]string{}
	for i, e := range envs {
		rs := n.mailboxReplicaSet(mailboxOf(e))
		groups[rs.key] = append(groups[rs.key], i)
		sets[rs.key] = rs.nodes
	}
	dup = make([]bool, len(envs))
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		idx := groups[k]
		part := make([]*tokenimv1.Envelope, len(idx))
		for j, i := range idx {
			part[j] = envs[i]
		}
		logged := make(chan error, 1)
		if slices.Contains(sets[k], n.nodeID) {
			logged <- nil // stored here: logged with the envelopes
		} else {
			go func() { logged <- n.relay.LogOnly(context.WithoutCancel(ctx), part) }()
		}
		d, err := n.storeOn(ctx, sets[k], part)
		if lerr := <-logged; lerr != nil {
			n.log.Warn("logging admitted envelopes failed", "err", lerr)
		}
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			dup[i] = d[j]
		}
	}
	return dup, nil
}

type replicaResult struct {
	node string
	dup  []bool
	err  error
}

// storeOn writes envs to every node of set and waits for a quorum.
func (n *Node) storeOn(ctx context.Context, set []string, envs []*tokenimv1.Envelope) ([]bool, error) {
	results := make(chan replicaResult, len(set))
	bg := context.WithoutCancel(ctx) // stragglers finish after the answer
	var toPeers *tokenimv1.ReplicateRequest
	if len(set) > 1 || set[0] != n.nodeID {
		toPeers = &tokenimv1.ReplicateRequest{}
		toPeers.Envelopes, toPeers.Shared = packShared(envs)
	}
	for _, id := range set {
		go func() {
			cctx, cancel := context.WithTimeout(bg, peerCallTimout)
			defer cancel()
			d, err := n.storeOnNode(cctx, id, envs, toPeers)
			results <- replicaResult{node: id, dup: d, err: err}
		}()
	}
	need := placement.Quorum(len(set))
	ok, dup := 0, make([]bool, len(envs))
	var errs []error
	for range set {
		var r replicaResult
		select {
		case r = <-results:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if r.err != nil {
			n.log.Warn("replica did not store envelopes", "node", r.node, "err", r.err)
			errs = append(errs, fmt.Errorf("%s: %w", short(r.node), r.err))
			continue
		}
		ok++
		for i, d := range r.dup {
			dup[i] = dup[i] || d
		}
		if ok >= need {
			return dup, nil
		}
	}
	return nil, fmt.Errorf("%w: %d of %d stored, need %d (%v)", ErrNoQuorum, ok, len(set), need, errors.Join(errs...))
}

// storeOnNode stores envs on node id: here, or through req (envs packed
// for a peer).
func (n *Node) storeOnNode(ctx context.Context, id string, envs []*tokenimv1.Envelope, req *tokenimv1.ReplicateRequest) ([]bool, error) {
	if id == n.nodeID {
		return n.relay.Append(ctx, envs)
	}
	rec, ok := n.registry().nodes[id]
	if !ok {
		return nil, fmt.Errorf("node %s not registered", id)
	}
	dups, err := n.replicateTo(ctx, rec.ApiUrl, envs, req)
	if err != nil {
		return nil, err
	}
	dup := make([]bool, len(envs))
	for i, e := range envs {
		for _, d := range dups {
			if sameBytes(d, e.Id) {
				dup[i] = true
			}
		}
	}
	return dup, nil
}

// legacyPerRequest is how many envelopes a node from before shared
// ciphertexts takes in one request.
const legacyPerRequest = 512

// replicateTo stores envs on the peer at url through req (envs packed) and
// returns the ids it reported as duplicates. A node from before shared
// ciphertexts refuses the unknown field (invalid argument): it gets the
// envelopes in full, as it expects, so a network can be upgraded node by
// node.
func (n *Node) replicateTo(ctx context.Context, url string, envs []*tokenimv1.Envelope, req *tokenimv1.ReplicateRequest) ([][]byte, error) {
	peer := n.peers.get(url)
	res, err := peer.Replicate(ctx, connect.NewRequest(req))
	if err == nil {
		return res.Msg.Duplicates, nil
	}
	if len(req.Shared) == 0 || connect.CodeOf(err) != connect.CodeInvalidArgument {
		return nil, err
	}
	var dups [][]byte
	for part := range slices.Chunk(envs, legacyPerRequest) {
		res, err := peer.Replicate(ctx, connect.NewRequest(&tokenimv1.ReplicateRequest{Envelopes: part}))
		if err != nil {
			return nil, err
		}
		dups = append(dups, res.Msg.Duplicates...)
	}
	return dups, nil
}

// forgetElsewhere tells the other replicas of handle's mailbox that these
// envelopes were acknowledged here. Best effort: a replica that misses it
// keeps a copy the client will recognise as a duplicate.
func (n *Node) forgetElsewhere(handle string, ids [][]byte) {
	if len(ids) == 0 {
		return
	}
	for _, rec := range n.otherReplicas(handle) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), peerCallTimout)
			defer cancel()
			if _, err := n.peers.get(rec.ApiUrl).Forget(ctx, connect.NewRequest(&tokenimv1.ForgetRequest{Recipient: handle, Ids: ids})); err != nil {
				n.log.Warn("forget on replica failed", "node", rec.NodeId, "err", err)
			}
		}()
	}
}

// otherReplicas are the registered nodes other than this one that keep
// handle's mailbox.
func (n *Node) otherReplicas(handle string) []*tokenimv1.NodeRecord {
	reg := n.registry()
	var out []*tokenimv1.NodeRecord
	for _, id := range n.mailboxReplicas(handle) {
		if rec, ok := reg.nodes[id]; ok && id != n.nodeID {
			out = append(out, rec)
		}
	}
	return out
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// sleepCtx waits d or until ctx ends; false if ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
