package node

import (
	"context"
	"crypto/ed25519"
	"slices"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
)

// Background work of a node in a network.
const (
	antiEntropyEvery  = 30 * time.Second
	antiEntropyMargin = 10 * time.Minute
	registerRetry     = 2 * time.Second
)

// sweepEvery is how often the retention sweeper runs.
const sweepEvery = time.Second

// sweeper deletes envelopes whose policy retention ended, on this replica
// (every replica runs one), and counts them.
func (n *Node) sweeper(ctx context.Context) {
	for sleepCtx(ctx, sweepEvery) {
		now := time.Now().UnixMilli()
		if p := n.pruneGroups(); p > 0 {
			n.metrics.pruned(p)
		}
		k, err := n.relay.Expire(now)
		if err != nil {
			n.log.Warn("retention sweep failed", "err", err)
			continue
		}
		c, err := n.blobs.Expire(now)
		if err != nil {
			n.log.Warn("chunk retention sweep failed", "err", err)
		}
		if k > 0 || c > 0 {
			n.metrics.expired(k)
			n.metrics.expiredChunks(c)
			n.log.Info("retention sweep", "envelopes", k, "chunks", c)
		}
	}
}

// cluster runs self-registration and anti-entropy until the node stops.
func (n *Node) cluster(ctx context.Context) {
	for n.comet.ConsensusReactor().WaitSync() {
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
	for {
		err := n.registerSelf(ctx)
		if err == nil {
			break
		}
		n.log.Warn("node registration failed; retrying", "err", err)
		if !sleepCtx(ctx, registerRetry) {
			return
		}
	}
	since := map[string]int64{}
	if last, err := n.relay.LastAdmittedMs(); err == nil && last > 0 {
		for _, id := range n.registry().ids {
			since[id] = last - antiEntropyMargin.Milliseconds()
		}
	}
	for {
		n.antiEntropy(ctx, since)
		if !sleepCtx(ctx, antiEntropyEvery) {
			return
		}
	}
}

// registerSelf puts (or updates) this node in the on-chain registry.
func (n *Node) registerSelf(ctx context.Context) error {
	rec, known := n.registry().nodes[n.nodeID]
	valKey := n.validatorKey
	if known && rec.ApiUrl == n.advertisedURL() && string(rec.ValidatorKey) == string(valKey) {
		return nil
	}
	seq := uint64(0)
	if known {
		seq = rec.Sequence
	}
	body := &tokenimv1.TxBody{ChainId: n.chainID, Signer: ledger.NodeSigner(n.nodeID), Sequence: seq,
		Msg: &tokenimv1.TxBody_RegisterNode{RegisterNode: &tokenimv1.RegisterNode{
			NodeId: n.nodeID, NodeKey: n.nodeKey.Public().(ed25519.PublicKey), ApiUrl: n.advertisedURL(),
			ValidatorKey: valKey, ValidatorSignature: n.validatorProof}}}
	res, err := n.commitNodeTx(ctx, body)
	if err != nil {
		return err
	}
	n.log.Info("registered in the node registry", "height", res.Height, "api", n.advertisedURL())
	return nil
}

// advertisedURL is the API URL other nodes and clients should use.
func (n *Node) advertisedURL() string {
	if n.settings.AdvertiseURL != "" {
		return n.settings.AdvertiseURL
	}
	return n.apiURL
}

// antiEntropy pulls, from every other registered node, what it admitted
// since the last pull (for mailboxes this node is a replica of).
func (n *Node) antiEntropy(ctx context.Context, since map[string]int64) {
	reg := n.registry()
	for _, id := range reg.ids {
		if id == n.nodeID {
			continue
		}
		start := time.Now().UnixMilli()
		if err := n.pullFrom(ctx, reg.nodes[id].ApiUrl, since[id]); err != nil {
			n.log.Debug("anti-entropy pull failed", "node", id, "err", err)
			continue
		}
		since[id] = start - antiEntropyMargin.Milliseconds()
	}
}

func (n *Node) pullFrom(ctx context.Context, apiURL string, sinceMs int64) error {
	var after []byte
	for {
		cctx, cancel := context.WithTimeout(ctx, peerCallTimout)
		res, err := n.peers.get(apiURL).Pull(cctx, connect.NewRequest(&tokenimv1.PullRequest{SinceMs: sinceMs, AfterId: after}))
		cancel()
		if err != nil {
			return err
		}
		if len(res.Msg.Envelopes) > 0 {
			if _, err := n.relay.Append(ctx, res.Msg.Envelopes); err != nil {
				return err
			}
			n.metrics.pulled(len(res.Msg.Envelopes))
		}
		if !res.Msg.More {
			return nil
		}
		after = res.Msg.LastId
	}
}

// pullMailbox copies handle's mailbox from its other replicas into this
// node's store: a node that just became a home node of handle (the user
// moved here) serves mail that was sent before. Bounded and best effort.
func (n *Node) pullMailbox(ctx context.Context, handle string) {
	reg := n.registry()
	set := n.mailboxReplicas(handle)
	if !slices.Contains(set, n.nodeID) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for _, id := range set {
		rec, ok := reg.nodes[id]
		if id == n.nodeID || !ok {
			continue
		}
		var after uint64
		for {
			res, err := n.peers.get(rec.ApiUrl).Pull(ctx, connect.NewRequest(&tokenimv1.PullRequest{Recipient: handle, AfterCursor: after}))
			if err != nil {
				break
			}
			if len(res.Msg.Envelopes) > 0 {
				if _, err := n.relay.Append(ctx, res.Msg.Envelopes); err != nil {
					return
				}
				n.metrics.pulled(len(res.Msg.Envelopes))
			}
			if !res.Msg.More {
				break
			}
			after = res.Msg.LastCursor
		}
	}
}

// commitNodeTx signs body with the node key and waits until it is in a
// block; a refused transaction is its ledger error.
func (n *Node) commitNodeTx(ctx context.Context, body *tokenimv1.TxBody) (*broadcastResult, error) {
	raw, err := ledger.SignTx(body, n.nodeKey)
	if err != nil {
		return nil, err
	}
	res, err := n.broadcastCommit(ctx, raw)
	if err != nil {
		return nil, err
	}
	if res.Code != ledger.CodeOK {
		return nil, ledger.CodeError(res.Code)
	}
	return res, nil
}
