package relay

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// benchAppend appends batches of batch 1 KB envelopes from many goroutines
// and reports envelopes/s and envelopes per commit.
func benchAppend(b *testing.B, batch int) {
	s := openStore(b, b.TempDir(), Options{})
	b.SetParallelism(16) // goroutines per CPU: many clients
	b.SetBytes(int64(1024 * batch))
	names := make([]string, 256)
	for i := range names {
		names[i] = fmt.Sprintf("user%03d", i)
	}
	ct := newEnv("x", 1024).Ciphertext
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		envs := make([]*tokenimv1.Envelope, batch)
		for pb.Next() {
			for i := range envs {
				envs[i] = &tokenimv1.Envelope{Id: newID(), To: names[next.Add(1)%256], From: "alice", Ciphertext: ct}
			}
			if _, err := s.Append(context.Background(), envs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "envelopes/s")
	b.ReportMetric(st.EnvelopesPerCommit(), "envelopes/commit")
}

func BenchmarkAppend(b *testing.B) { benchAppend(b, 1) }

func BenchmarkAppendBatch(b *testing.B) { benchAppend(b, 64) }
