package e2enet

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
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

// BenchmarkAnchorLatencyNet: on the four-validator network, the time from
// a message's admission at node0 (sender's node) until node0 serves a
// proof that it is anchored (its log root in a block, the next block
// signed by more than 2/3 of the power), one message every ~100 ms.
//
//	go test ./e2enet -run '^$' -bench AnchorLatencyNet -benchtime 50x
func BenchmarkAnchorLatencyNet(b *testing.B) {
	ctx := context.Background()
	var users []*client.Client
	for i, name := range []string{"anx", "any"} {
		c, err := client.Create(ctx, conf(b.TempDir(), i), fmt.Sprintf("%s%d", name, time.Now().UnixNano()%1e6))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		users = append(users, c)
	}
	api := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, net4.url(0))
	var lat []time.Duration
	for b.Loop() {
		m, err := users[0].Send(ctx, users[1].Handle(), "anchor me")
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		id, _ := hex.DecodeString(m.ID)
		for {
			res, err := api.GetMessageProof(ctx, connect.NewRequest(&tokenimv1.GetMessageProofRequest{EnvelopeId: id}))
			if err != nil {
				b.Fatal(err)
			}
			if res.Msg.State == "anchored" {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Milliseconds()), "p99-ms")
}
