package node

import (
	"context"
	"crypto/ed25519"
	"time"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/msglog"
)

// anchorEvery is how often the anchorer looks for log growth when no
// envelope woke it; anchorGap is the least time between two anchors of this
// node (each costs a block and the proof block after it: under a stream of
// envelopes, anchoring every few hundred milliseconds keeps consensus off
// the hot path, far inside the seconds a proof may take).
const (
	anchorEvery = time.Second
	anchorGap   = 300 * time.Millisecond
)

// anchorer puts the log's root on chain whenever the log grew beyond the
// node's latest anchor: one AnchorLog transaction at a time, each with a
// consistency proof from the previous anchor (the ledger checks it).
func (n *Node) anchorer(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.logGrew:
		case <-time.After(anchorEvery):
		}
		if wait := anchorGap - time.Since(last); wait > 0 {
			sleepCtx(ctx, wait) // let a burst gather into one anchor
		}
		anchored, err := n.anchorOnce(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("anchoring the message log failed; retrying", "err", err)
			sleepCtx(ctx, anchorEvery)
		}
		if anchored {
			last = time.Now()
		}
	}
}

// anchorOnce submits one anchor if the log grew; it returns once the
// transaction is in a block.
func (n *Node) anchorOnce(ctx context.Context) (anchored bool, err error) {
	msgLog := n.relay.Log()
	size := msgLog.Size()
	if _, ok := n.registry().nodes[n.nodeID]; size == 0 || !ok {
		return false, nil // nothing to anchor, or not registered yet
	}
	r, _ := n.app.Committed()
	prev, err := ledger.GetAnchor(r, n.nodeID)
	if err != nil {
		return false, err
	}
	prevSize := prev.GetTreeSize()
	if size <= prevSize {
		return false, nil
	}
	a := &tokenimv1.AnchorLog{TreeSize: size, PrevSize: prevSize, NodeKey: n.nodeKey.Public().(ed25519.PublicKey)}
	err = n.relay.WithLog(func(l *msglog.Log) error {
		var err error
		if a.RootHash, err = l.Root(size); err != nil || prevSize == 0 {
			return err
		}
		a.Consistency, err = l.Consistency(prevSize, size)
		return err
	})
	if err != nil {
		return false, err
	}
	res, err := n.commitNodeTx(ctx, &tokenimv1.TxBody{ChainId: n.chainID, Signer: ledger.NodeSigner(n.nodeID), // no sequence: see ledger.unsequenced
		Msg: &tokenimv1.TxBody_AnchorLog{AnchorLog: a}})
	if err != nil {
		return false, err
	}
	n.metrics.anchored(size, res.Height)
	return true, n.relay.WithLog(func(l *msglog.Log) error { return l.RecordAnchor(size, res.Height) })
}

// noteLogGrowth wakes the anchorer (never blocks).
func (n *Node) noteLogGrowth() {
	select {
	case n.logGrew <- struct{}{}:
	default:
	}
}
