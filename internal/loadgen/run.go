package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
)

// Options configure a run.
type Options struct {
	NodeURL string
	// ReceiverURL, if set, is the node receivers read from (cross-node
	// delivery); senders use NodeURL.
	ReceiverURL string
	Clients     int           // sender→receiver pairs (default 16)
	Duration    time.Duration // of the throughput phase; the latency phase takes the same (default 5 s)
	Size        int           // ciphertext bytes (default 1024)
	Batch       int           // envelopes per Send in the throughput phase (default 64)
	// LatencyRate is the envelopes/s offered in the latency phase (0: half
	// the measured throughput).
	LatencyRate float64
}

// Result is what a run measured.
type Result struct {
	Clients       int
	Size          int
	Admitted      int64         // envelopes stored in the throughput phase
	AdmitRate     float64       // per second
	DeliverRate   float64       // per second, until the last one was received
	LatencyRate   float64       // envelopes/s offered in the latency phase
	LatencyN      int           // envelopes measured
	P50, P99, Max time.Duration // send start → received on the stream
}

func (r *Result) String() string {
	return fmt.Sprintf("%d clients, %d B envelopes\n  admitted:  %.0f envelopes/s (durable, %d in all)\n  delivered: %.0f envelopes/s\n  latency at %.0f envelopes/s (%d samples): p50 %s, p99 %s, max %s",
		r.Clients, r.Size, r.AdmitRate, r.Admitted, r.DeliverRate, r.LatencyRate, r.LatencyN,
		r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond))
}

func (o *Options) defaults() {
	if o.Clients <= 0 {
		o.Clients = 16
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Size < 16 {
		o.Size = 1024
	}
	if o.Batch <= 0 {
		o.Batch = 64
	}
}

func httpClient() *http.Client {
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
	}
	return &http.Client{Transport: t}
}

// Run registers 2×Clients accounts, measures throughput, then latency at
// half the measured throughput.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	hc := httpClient()
	node := tokenimv1connect.NewNodeServiceClient(hc, o.NodeURL)
	relay := tokenimv1connect.NewRelayServiceClient(hc, o.NodeURL)
	rxNode, rxRelay := node, relay
	if o.ReceiverURL != "" {
		rxNode = tokenimv1connect.NewNodeServiceClient(hc, o.ReceiverURL)
		rxRelay = tokenimv1connect.NewRelayServiceClient(hc, o.ReceiverURL)
	}
	prefix := randomPrefix()
	senders, err := registerAccounts(ctx, node, relay, prefix+"s", o.Clients)
	if err != nil {
		return nil, err
	}
	receivers, err := registerAccounts(ctx, rxNode, rxRelay, prefix+"r", o.Clients)
	if err != nil {
		return nil, err
	}
	rx := newReceivers(ctx, rxRelay, receivers)
	defer rx.stop()
	if err := rx.ready(ctx); err != nil {
		return nil, err
	}
	res := &Result{Clients: o.Clients, Size: o.Size}
	if err := throughput(ctx, relay, senders, receivers, rx, o, res); err != nil {
		return nil, err
	}
	if err := latency(ctx, relay, senders, receivers, rx, o, res); err != nil {
		return nil, err
	}
	return res, nil
}

// envelope makes an envelope whose ciphertext starts with the send time.
func envelope(to string, size int, sentAt time.Time) *tokenimv1.Envelope {
	ct := make([]byte, size)
	rand.Read(ct[8:])
	binary.BigEndian.PutUint64(ct, uint64(sentAt.UnixNano()))
	id := make([]byte, 16)
	rand.Read(id)
	return &tokenimv1.Envelope{Id: id, To: to, Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE, Ciphertext: ct}
}

func send(ctx context.Context, relay tokenimv1connect.RelayServiceClient, from *account, envs []*tokenimv1.Envelope) error {
	req := connect.NewRequest(&tokenimv1.SendRequest{Envelopes: envs})
	from.authHeader(req.Header())
	_, err := relay.Send(ctx, req)
	return err
}

func throughput(ctx context.Context, relay tokenimv1connect.RelayServiceClient, senders, receivers []*account, rx *receivers, o Options, res *Result) error {
	base := rx.count()
	var admitted atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	deadline := start.Add(o.Duration)
	var wg sync.WaitGroup
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				envs := make([]*tokenimv1.Envelope, o.Batch)
				for j := range envs {
					envs[j] = envelope(receivers[i].handle, o.Size, time.Now())
				}
				if err := send(ctx, relay, s, envs); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				admitted.Add(int64(o.Batch))
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("send: %w", firstErr)
	}
	elapsed := time.Since(start)
	res.Admitted = admitted.Load()
	res.AdmitRate = float64(res.Admitted) / elapsed.Seconds()
	last, err := rx.waitFor(ctx, base+res.Admitted, 60*time.Second)
	if err != nil {
		return err
	}
	res.DeliverRate = float64(res.Admitted) / last.Sub(start).Seconds()
	return nil
}

func latency(ctx context.Context, relay tokenimv1connect.RelayServiceClient, senders, receivers []*account, rx *receivers, o Options, res *Result) error {
	rate := res.AdmitRate / 2
	if o.LatencyRate > 0 {
		rate = o.LatencyRate
	}
	perSender := rate / float64(len(senders))
	interval := time.Duration(float64(time.Second) / perSender)
	res.LatencyRate = rate
	base := rx.count()
	rx.record(true)
	var sent atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(o.Duration)
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now().Add(time.Duration(i) * interval / time.Duration(len(senders)))
			for next.Before(deadline) && ctx.Err() == nil {
				time.Sleep(time.Until(next))
				if err := send(ctx, relay, s, []*tokenimv1.Envelope{envelope(receivers[i].handle, o.Size, time.Now())}); err == nil {
					sent.Add(1)
				}
				next = next.Add(interval)
			}
		}()
	}
	wg.Wait()
	if _, err := rx.waitFor(ctx, base+sent.Load(), 60*time.Second); err != nil {
		return err
	}
	lat := rx.record(false)
	if len(lat) == 0 {
		return errors.New("latency phase: nothing received")
	}
	slices.Sort(lat)
	res.LatencyN = len(lat)
	res.P50 = lat[len(lat)*50/100]
	res.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
	res.Max = lat[len(lat)-1]
	return nil
}
