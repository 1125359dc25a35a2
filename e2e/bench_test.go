package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/tokenim/tokenim/internal/loadgen"
)

// BenchmarkNode drives the shared node with 16 sender→receiver pairs (1 KB
// envelopes): durable envelopes/s admitted and delivered, then send→receive
// latency at half that rate. The same measurement as `tokenim bench`.
//
//	go test ./e2e -run XXX -bench Node -benchtime 1x
func BenchmarkNode(b *testing.B) {
	for b.Loop() {
		res, err := loadgen.Run(context.Background(), loadgen.Options{NodeURL: tn.url(), Clients: 16, Duration: 3 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.AdmitRate, "admitted/s")
		b.ReportMetric(res.DeliverRate, "delivered/s")
		b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
	}
}
