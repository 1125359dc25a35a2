package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
)

// BenchmarkGroupRealClients1000: a 1,000-member group of real SDK clients,
// each with its own keystore and Signal store. Measured: the owner's first
// post (its sender key to 999 members over new 1:1 sessions — X3DH with
// each one's prekey bundle — then the post itself), the time until every
// member has synced and decrypted it, and the same for b.N later posts
// (first-send-s, first-all-s, send-p50-ms, all-p50-ms). Members sync 8 at
// a time; all clients and the node share this process.
//
//	go test ./e2e -run '^$' -bench GroupRealClients -benchtime 10x
func BenchmarkGroupRealClients1000(b *testing.B) {
	ctx := context.Background()
	const members = 999
	clients := make([]*client.Client, members+1)
	errs := make(chan error, len(clients))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := client.Create(ctx, cfg(b.TempDir()), uniqueHandle("rc"))
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	owner, rest := clients[0], clients[1:]
	var handles []string
	for _, c := range rest {
		handles = append(handles, c.Handle())
	}
	group := uniqueHandle("realbig")
	if err := owner.CreateGroup(ctx, group, handles, ""); err != nil {
		b.Fatal(err)
	}
	// syncAll has every member sync and checks each decrypted text.
	syncAll := func(text string) time.Duration {
		start := time.Now()
		work := make(chan *client.Client)
		fail := make(chan error, len(rest))
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range work {
					got, err := c.Sync(ctx)
					if err == nil && !slices.ContainsFunc(got, func(m client.Message) bool {
						return m.Group == group && m.Text == text && m.State == client.StateReceived
					}) {
						err = fmt.Errorf("%s did not decrypt %q (%d messages)", c.Handle(), text, len(got))
					}
					if err != nil {
						fail <- err
					}
				}
			}()
		}
		for _, c := range rest {
			work <- c
		}
		close(work)
		wg.Wait()
		close(fail)
		for err := range fail {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	start := time.Now()
	if _, err := owner.SendGroup(ctx, group, "first"); err != nil {
		b.Fatal(err)
	}
	firstSend := time.Since(start)
	firstAll := syncAll("first")
	var send, all []time.Duration
	i := 0
	for b.Loop() {
		text := fmt.Sprintf("post %d", i)
		i++
		start := time.Now()
		if _, err := owner.SendGroup(ctx, group, text); err != nil {
			b.Fatal(err)
		}
		send = append(send, time.Since(start))
		all = append(all, syncAll(text))
	}
	p50 := func(l []time.Duration) float64 {
		slices.Sort(l)
		return float64(l[len(l)/2].Microseconds()) / 1000
	}
	b.ReportMetric(firstSend.Seconds(), "first-send-s")
	b.ReportMetric(firstAll.Seconds(), "first-all-s")
	b.ReportMetric(p50(send), "send-p50-ms")
	b.ReportMetric(p50(all), "all-p50-ms")
}
