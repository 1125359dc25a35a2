package e2enet

import (
	"context"
	"testing"
	"time"

	"github.com/tokenim/tokenim/internal/loadgen"
)

// BenchmarkCrossNode: senders on node0, receivers on node2 (their home),
// 32 pairs, 1 KB envelopes; durable throughput, then latency at half of
// it; and how the stored copies spread over the nodes.
//
//	go test ./e2enet -run '^$' -bench CrossNode -benchtime 1x
func BenchmarkCrossNode(b *testing.B) { benchCrossNode(b, 0) }

// BenchmarkCrossNodeLight measures latency at a light 200 envelopes/s.
func BenchmarkCrossNodeLight(b *testing.B) { benchCrossNode(b, 200) }

func benchCrossNode(b *testing.B, latencyRate float64) {
	for b.Loop() {
		before := make([]uint64, len(net4.nodes))
		for i, n := range net4.nodes {
			before[i] = n.StoredCopies()
		}
		res, err := loadgen.Run(context.Background(), loadgen.Options{NodeURL: net4.url(0), ReceiverURL: net4.url(2), Clients: 32, Duration: 3 * time.Second, LatencyRate: latencyRate})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.AdmitRate, "admitted/s")
		b.ReportMetric(res.DeliverRate, "delivered/s")
		b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
		var copies uint64
		for i, n := range net4.nodes {
			d := n.StoredCopies() - before[i]
			copies += d
			b.Logf("node%d stored %d envelope copies", i, d)
		}
		total := res.Admitted + int64(res.LatencyN)
		b.ReportMetric(float64(copies)/float64(total), "copies/envelope")
	}
}
