package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
)

// ackEvery is how many deliveries a receiver processes per Ack.
const ackEvery = 512

// receivers keeps one Receive stream per account open and counts.
type receivers struct {
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	received  atomic.Int64
	caughtUp  atomic.Int64
	errMu     sync.Mutex
	err       error
	lastAt    atomic.Int64 // unix nanos of the latest delivery
	recording atomic.Bool
	latMu     sync.Mutex
	lat       []time.Duration
	n         int
}

func newReceivers(ctx context.Context, relay tokenimv1connect.RelayServiceClient, accts []*account) *receivers {
	ctx, cancel := context.WithCancel(ctx)
	r := &receivers{cancel: cancel, n: len(accts)}
	for _, a := range accts {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.run(ctx, relay, a); err != nil && ctx.Err() == nil {
				r.errMu.Lock()
				r.err = fmt.Errorf("receive @%s: %w", a.handle, err)
				r.errMu.Unlock()
			}
		}()
	}
	return r
}

func (r *receivers) run(ctx context.Context, relay tokenimv1connect.RelayServiceClient, a *account) error {
	req := connect.NewRequest(&tokenimv1.ReceiveRequest{})
	a.authHeader(req.Header())
	stream, err := relay.Receive(ctx, req)
	if err != nil {
		return err
	}
	defer stream.Close()
	// Acks go on an AckStream beside the Receive stream, as the client's do.
	acks := relay.AckStream(ctx)
	a.authHeader(acks.RequestHeader())
	acksOpen := true
	defer func() {
		if acksOpen {
			acks.CloseAndReceive()
		}
	}()
	var last, acked uint64
	for stream.Receive() {
		msg := stream.Msg()
		if msg.GetCaughtUp() {
			r.caughtUp.Add(1)
			continue
		}
		d := msg.GetDelivery()
		now := time.Now()
		if r.recording.Load() && len(d.Envelope.Ciphertext) >= 8 {
			sent := int64(binary.BigEndian.Uint64(d.Envelope.Ciphertext))
			r.latMu.Lock()
			r.lat = append(r.lat, now.Sub(time.Unix(0, sent)))
			r.latMu.Unlock()
		}
		last = d.Cursor
		r.lastAt.Store(now.UnixNano())
		r.received.Add(1)
		if last-acked >= ackEvery {
			if err := acks.Send(&tokenimv1.AckRequest{Cursor: last}); err != nil {
				acksOpen = false
				_, err = acks.CloseAndReceive() // the stream's error
				return fmt.Errorf("ack stream: %w", err)
			}
			acked = last
		}
	}
	return stream.Err()
}

func (r *receivers) count() int64 { return r.received.Load() }

func (r *receivers) failure() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// ready waits until every stream reached its caught_up marker.
func (r *receivers) ready(ctx context.Context) error {
	for r.caughtUp.Load() < int64(r.n) {
		if err := r.failure(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// waitFor waits until n deliveries were counted; returns the time of the last.
func (r *receivers) waitFor(ctx context.Context, n int64, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for r.count() < n {
		if err := r.failure(); err != nil {
			return time.Time{}, err
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("only %d of %d envelopes delivered after %s", r.count(), n, limit)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return time.Unix(0, r.lastAt.Load()), nil
}

// record switches latency recording on or off; off returns the samples.
func (r *receivers) record(on bool) []time.Duration {
	r.latMu.Lock()
	defer r.latMu.Unlock()
	r.recording.Store(on)
	if on {
		r.lat = nil
		return nil
	}
	out := r.lat
	r.lat = nil
	return out
}

func (r *receivers) stop() {
	r.cancel()
	r.wg.Wait()
}
