package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFileRoundTrip sends a random file alice → bob through the shared
// node and downloads it again: upload and download MiB/s, and the peak Go
// heap of the whole process (client and node) to show chunks stream.
// TOKENIM_BENCH_FILE_MIB sets the size (default 64):
//
//	TOKENIM_BENCH_FILE_MIB=1024 go test ./e2e -run '^$' -bench FileRoundTrip -benchtime 1x
func BenchmarkFileRoundTrip(b *testing.B) {
	mib := int64(64)
	if s := os.Getenv("TOKENIM_BENCH_FILE_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		mib = n
	}
	size := mib << 20
	ctx := context.Background()
	alice, _ := newBenchUser(b, "fa")
	bob, _ := newBenchUser(b, "fb")
	src := filepath.Join(b.TempDir(), "payload.bin")
	want := writeRandomFile(b, src, size)
	peak := watchHeap(b)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := alice.SendFile(ctx, bob.Handle(), src, nil); err != nil {
			b.Fatal(err)
		}
		up := time.Since(start)
		got, err := bob.Sync(ctx)
		if err != nil || len(got) != 1 || got[0].File == nil {
			b.Fatalf("bob got %+v, %v", got, err)
		}
		start = time.Now()
		path, err := bob.FetchFile(ctx, got[0].ID, b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		down := time.Since(start)
		if sum := fileSum(b, path); !bytes.Equal(sum, want) {
			b.Fatal("downloaded file differs")
		}
		os.Remove(path)
		b.ReportMetric(float64(mib)/up.Seconds(), "upload-MiB/s")
		b.ReportMetric(float64(mib)/down.Seconds(), "download-MiB/s")
	}
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}

// writeRandomFile writes size random bytes to path and returns their SHA-256.
func writeRandomFile(tb testing.TB, path string, size int64) []byte {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		tb.Fatal(err)
	}
	return h.Sum(nil)
}

func fileSum(tb testing.TB, path string) []byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	return h.Sum(nil)
}

// watchHeap samples the heap until the benchmark ends and keeps the peak.
func watchHeap(tb testing.TB) *atomic.Uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	tb.Cleanup(func() { close(done) })
	return &peak
}
