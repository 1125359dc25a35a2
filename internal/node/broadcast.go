package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/mempool"
	"github.com/cometbft/cometbft/types"
)

// Broadcast limits.
const (
	maxPendingBroadcasts = 256
	broadcastTimeout     = 30 * time.Second
)

var (
	// errNoBlock: the transaction passed CheckTx and waits in the mempool,
	// but no block took it in time (the chain stalls while more than a
	// third of the validators' power is offline); it may still commit.
	errNoBlock       = errors.New("no block took the transaction in time; it waits in the mempool and may still commit (does the chain stall? more than a third of the validators' power may be offline)")
	errBroadcastBusy = errors.New("too many transactions waiting for a block; retry")
	errTxSeen        = errors.New("transaction already seen (replay)")
)

// broadcastResult is the outcome of a transaction that reached a block, or
// was refused by CheckTx (Height 0).
type broadcastResult struct {
	Code   uint32
	Log    string
	Height int64
	Hash   []byte
}

var broadcastSeq atomic.Uint64

// broadcastCommit adds tx to the mempool and waits until it is in a block.
// Unlike CometBFT's RPC BroadcastTxCommit, each call subscribes under its
// own name, so concurrent API calls are not capped at a handful.
func (n *Node) broadcastCommit(ctx context.Context, tx []byte) (*broadcastResult, error) {
	select {
	case n.broadcasts <- struct{}{}:
		defer func() { <-n.broadcasts }()
	default:
		return nil, errBroadcastBusy
	}
	ctx, cancel := context.WithTimeout(ctx, broadcastTimeout)
	defer cancel()
	bus := n.comet.EventBus()
	subscriber := fmt.Sprintf("tokenim-api-%d", broadcastSeq.Add(1))
	q := types.EventQueryTxFor(tx)
	sub, err := bus.Subscribe(ctx, subscriber, q, 1)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	defer bus.Unsubscribe(context.Background(), subscriber, q)
	checked := make(chan *abci.ResponseCheckTx, 1)
	err = n.comet.Mempool().CheckTx(tx, func(r *abci.ResponseCheckTx) { checked <- r }, mempool.TxInfo{})
	if errors.Is(err, mempool.ErrTxInCache) || (err != nil && strings.Contains(err.Error(), mempool.ErrTxInCache.Error())) {
		return nil, errTxSeen
	}
	if err != nil {
		return nil, fmt.Errorf("mempool: %w", err)
	}
	hash := types.Tx(tx).Hash()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-checked:
		if r.Code != abci.CodeTypeOK {
			return &broadcastResult{Code: r.Code, Log: r.Log, Hash: hash}, nil
		}
	}
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (%v)", errNoBlock, ctx.Err())
	case <-sub.Canceled():
		return nil, fmt.Errorf("waiting for a block: %v", sub.Err())
	case msg := <-sub.Out():
		ev := msg.Data().(types.EventDataTx)
		return &broadcastResult{Code: ev.Result.Code, Log: ev.Result.Log, Height: ev.Height, Hash: hash}, nil
	}
}
