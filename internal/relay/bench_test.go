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
	cts := make([][]byte, 4096) // distinct ciphertexts, as 1:1 messages have
	for i := range cts {
		cts[i] = newEnv("x", 1024).Ciphertext
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		envs := make([]*tokenimv1.Envelope, batch)
		for pb.Next() {
			for i := range envs {
				n := next.Add(1)
				envs[i] = &tokenimv1.Envelope{Id: newID(), To: names[n%256], From: "alice", Ciphertext: cts[n%4096]}
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

// BenchmarkAppendGroupPost: one post to a 1,000-member group, 1 KB, with a
// commitment and an expiry, into a store that holds earlier posts: as the
// node stores it now (group-mailbox: once, with its 999 readers) and as it
// did before group mailboxes (copies: 999 copies of the ciphertext in one
// Append). Reports ms per post.
//
//	go test ./internal/relay -run '^$' -bench GroupPost -benchtime 200x
func BenchmarkAppendGroupPost(b *testing.B) {
	names := make([]string, 999)
	for i := range names {
		names[i] = fmt.Sprintf("member%04d", i)
	}
	copies := func() []*tokenimv1.Envelope { // a copy per member (the older form)
		ct := newEnv("x", 1024).Ciphertext
		envs := make([]*tokenimv1.Envelope, len(names))
		for i, to := range names {
			envs[i] = &tokenimv1.Envelope{Id: newID(), To: to, From: "owner", Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP,
				Group: "team", Ciphertext: ct, Commitment: make([]byte, CommitmentSize), ExpiresAtMs: 1_900_000_000_000}
		}
		return envs
	}
	mailbox := func() []*tokenimv1.Envelope { // stored once, with its readers
		return []*tokenimv1.Envelope{{Id: newID(), From: "owner", Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP, Group: "team",
			Ciphertext: newEnv("x", 1024).Ciphertext, Commitment: make([]byte, CommitmentSize), ExpiresAtMs: 1_900_000_000_000, Readers: names}}
	}
	b.Run("copies", func(b *testing.B) { benchGroupPost(b, copies) })
	b.Run("group-mailbox", func(b *testing.B) { benchGroupPost(b, mailbox) })
}

func benchGroupPost(b *testing.B, post func() []*tokenimv1.Envelope) {
	s := openStore(b, b.TempDir(), Options{})
	for range 20 { // earlier posts
		if _, err := s.Append(context.Background(), post()); err != nil {
			b.Fatal(err)
		}
	}
	commits := s.Stats().Commits
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		envs := post()
		b.StartTimer()
		if _, err := s.Append(context.Background(), envs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/post")
	if s.Stats().Commits-commits != uint64(b.N) {
		b.Fatalf("%d commits for %d posts", s.Stats().Commits-commits, b.N)
	}
}
