package node

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// metrics are the node's Prometheus metrics, in a registry of its own (so
// several nodes can run in one test process).
type metrics struct {
	reg        *prometheus.Registry
	admittedN  prometheus.Counter
	duplicates prometheus.Counter
	admitBytes prometheus.Counter
	deliveredN prometheus.Counter
	pushed     atomic.Uint64 // mirrors deliveredN for Delivered
	appendSecs prometheus.Histogram
	rpcs       *prometheus.CounterVec
	replicaIn  prometheus.Counter
	pulledIn   prometheus.Counter
	expiredN   prometheus.Counter
	prunedN    prometheus.Counter
	expiredC   prometheus.Counter
	anchoredN  prometheus.Gauge
	anchorH    prometheus.Gauge
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg:        prometheus.NewRegistry(),
		admittedN:  prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenim_envelopes_admitted_total", Help: "Envelopes stored durably."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenim_envelopes_duplicate_total", Help: "Envelopes not stored again (same id)."}),
		admitBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenim_envelope_bytes_admitted_total", Help: "Ciphertext bytes stored."}),
		deliveredN: prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenim_envelopes_delivered_total", Help: "Envelopes pushed to recipients' streams."}),
		appendSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tokenim_relay_append_seconds", Help: "Time to store a send durably (group commit).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		replicaIn:  prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenim_envelopes_replicated_in_total", Help: "Envelopes other nodes replicated here."}),
		pulledIn:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenim_envelopes_pulled_total", Help: "Envelopes fetched by anti-entropy."}),
		expiredN:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenim_envelopes_expired_total", Help: "Envelopes deleted by the retention sweeper."}),
		prunedN:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenim_group_posts_pruned_total", Help: "Group posts deleted once every reader had acknowledged them."}),
		expiredC:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenim_chunks_expired_total", Help: "File chunks deleted by the retention sweeper."}),
		anchoredN:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "tokenim_log_anchored_size", Help: "Leaves of this node's message log anchored on chain."}),
		anchorH:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "tokenim_log_anchor_height", Help: "Height of this node's latest anchor."}),
		rpcs:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenim_api_requests_total", Help: "API requests by procedure and code."}, []string{"procedure", "code"}),
	}
	height := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tokenim_chain_height", Help: "Latest committed height."}, func() float64 { return float64(n.Height()) })
	m.reg.MustRegister(m.admittedN, m.duplicates, m.admitBytes, m.deliveredN, m.appendSecs, m.rpcs, m.replicaIn, m.pulledIn, m.expiredN, m.prunedN, m.expiredC, m.anchoredN, m.anchorH, height,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

func (m *metrics) admitted(envs []*tokenimv1.Envelope, dup []bool, took time.Duration) {
	m.appendSecs.Observe(took.Seconds())
	for i, e := range envs {
		if dup[i] {
			m.duplicates.Inc()
			continue
		}
		m.admittedN.Inc()
		m.admitBytes.Add(float64(len(e.Ciphertext)))
	}
}

func (m *metrics) replicated(k int) { m.replicaIn.Add(float64(k)) }

func (m *metrics) pulled(k int) { m.pulledIn.Add(float64(k)) }

func (m *metrics) expired(k int) { m.expiredN.Add(float64(k)) }
func (m *metrics) pruned(k int)  { m.prunedN.Add(float64(k)) }

func (m *metrics) expiredChunks(k int) { m.expiredC.Add(float64(k)) }

func (m *metrics) anchored(size uint64, height int64) {
	m.anchoredN.Set(float64(size))
	m.anchorH.Set(float64(height))
}

// StoredEnvelopes is how many envelopes this node holds now.
func (n *Node) StoredEnvelopes() int64 { return n.relay.Stats().Envelopes }

func (m *metrics) delivered(batch []*tokenimv1.Delivery) {
	m.deliveredN.Add(float64(len(batch)))
	m.pushed.Add(uint64(len(batch)))
}

// Delivered is how many envelopes this node has written to recipients'
// streams since it started (benchmarks time the node's share with it).
func (n *Node) Delivered() uint64 { return n.metrics.pushed.Load() }

func (m *metrics) interceptor() connect.Interceptor { return rpcCounter{m.rpcs} }

// rpcCounter counts unary and streaming calls by procedure and result code.
type rpcCounter struct{ c *prometheus.CounterVec }

func (r rpcCounter) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		resp, err := next(ctx, req)
		r.c.WithLabelValues(req.Spec().Procedure, codeLabel(err)).Inc()
		return resp, err
	}
}

func (r rpcCounter) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (r rpcCounter) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		r.c.WithLabelValues(conn.Spec().Procedure, codeLabel(err)).Inc()
		return err
	}
}

func codeLabel(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

// StoredCopies is how many envelopes this node's relay has stored since it
// was created (its share of the network's mail, including deleted ones).
func (n *Node) StoredCopies() uint64 { return n.relay.Stats().Committed }
