package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"

	"github.com/tokenim/tokenim/internal/loadgen"
)

// BenchmarkNode drives the shared node with 16 sender→receiver pairs (1 KB
// envelopes): durable envelopes/s admitted and delivered, then send→receive
// latency at half that rate. The same measurement as `tokenim bench`.
//
//	go test ./e2e -run '^$' -bench Node -benchtime 1x
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

// BenchmarkChatLatency measures what a person sees: Send (Signal encryption,
// durable store on the node) until the recipient's Listen callback has the
// decrypted, locally stored message, one message at a time at about 50/s.
//
//	go test ./e2e -run '^$' -bench ChatLatency -benchtime 500x
func BenchmarkChatLatency(b *testing.B) {
	ctx := context.Background()
	alice, _ := newBenchUser(b, "la")
	bob, _ := newBenchUser(b, "lb")
	arrived := make(chan time.Time, 1)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go bob.Listen(lctx, func(client.Message) { arrived <- time.Now() })
	if _, err := alice.Send(ctx, bob.Handle(), "warm-up"); err != nil { // X3DH happens here
		b.Fatal(err)
	}
	<-arrived
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := alice.Send(ctx, bob.Handle(), "latency probe"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-arrived).Sub(start))
		time.Sleep(20 * time.Millisecond)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
}

func newBenchUser(b *testing.B, base string) (*client.Client, string) {
	home := b.TempDir()
	c, err := client.Create(context.Background(), cfg(home), uniqueHandle(base))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c, home
}
