package e2e

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/loadgen"
)

// BenchmarkGroupFanOut1000: one post to a 1,000-member group whose members
// all have a stream open on this node, posted back to back (the next post
// as soon as every member has the previous one: the node, the 999
// receiving streams in this process and the chain share two cores, all
// saturated) and every 100 ms (each post meets a node that has finished
// the previous one's background work); the time from Send until the last
// member has it (p50/p99-ms, the 999 receiving streams decode in this
// process too), and until the node has written the last copy to its
// stream (node-p50/p99-ms: the node's share — policy checks for 999
// recipients, durable storage, pushes). Each member reads and
// acknowledges as a device running the SDK does, with connections of its
// own (HTTP/1.1, as the SDK speaks to an http:// node: one for the Receive
// stream, one for the AckStream). The post is sent as the client sends it:
// one request, one 1 KB envelope, stored once in the group's mailbox. The
// ciphertext is opaque: the clients' sender-key encryption is done once
// per post and is not what is measured. receivers-apart repeats both with
// the 999 streams read by a child process at the lowest CPU priority (as
// if the members' devices were elsewhere: the node gets the CPU first). The
// log gives each run's p90/p95, how many posts overlapped a GC cycle, the
// slowest posts, and the bytes allocated per post.
//
//	go test ./e2e -run '^$' -bench GroupFanOut -benchtime 300x
func BenchmarkGroupFanOut1000(b *testing.B) {
	ctx := context.Background()
	accts, err := loadgen.Register(ctx, tn.url(), uniqueHandle("fan"), 1000)
	if err != nil {
		b.Fatal(err)
	}
	owner, group := accts[0], uniqueHandle("big")
	createBigGroup(b, owner, group, accts[1:])
	relayAPI := tokenimv1connect.NewRelayServiceClient(client.DefaultHTTPClient(), tn.url())
	var got atomic.Int64
	sctx, stop := context.WithCancel(ctx)
	var ready, done sync.WaitGroup
	for _, a := range accts[1:] {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			stream(sctx, deviceAPI(tn.url()), a.Token, &ready, &got)
		}()
	}
	ready.Wait()
	b.Run("back-to-back", func(b *testing.B) { fanOutPosts(b, relayAPI, owner, group, accts, &got, 0) })
	b.Run("every-100ms", func(b *testing.B) { fanOutPosts(b, relayAPI, owner, group, accts, &got, 100*time.Millisecond) })
	stop()
	done.Wait()
	time.Sleep(time.Second) // the node's handlers see the streams end
	// The same members, their streams read by another process at the
	// lowest CPU priority: the receivers stand in for 999 devices elsewhere
	// and take only the CPU the node leaves idle.
	apart := startReceivers(b, accts[1:])
	defer apart.stop()
	b.Run("receivers-apart", func(b *testing.B) {
		b.Run("back-to-back", func(b *testing.B) { fanOutPosts(b, relayAPI, owner, group, accts, &apart.got, 0) })
		b.Run("every-100ms", func(b *testing.B) { fanOutPosts(b, relayAPI, owner, group, accts, &apart.got, 100*time.Millisecond) })
	})
}

// fanOutPosts posts b.N times to group, each post starting gap after the
// previous one started (0: as soon as every member has the previous one).
func fanOutPosts(b *testing.B, relayAPI tokenimv1connect.RelayServiceClient, owner loadgen.Account, group string, accts []loadgen.Account, got *atomic.Int64, gap time.Duration) {
	ctx := context.Background()
	var lat, nodeLat, sendLat []time.Duration
	type rec struct {
		d  time.Duration
		gc uint64
	}
	var recs []rec
	defer func() { // the node's share: its tail, and what the slowest posts met
		slices.SortFunc(recs, func(a, b rec) int { return cmp.Compare(b.d, a.d) })
		gcs, slowest := 0, ""
		for i, r := range recs {
			if r.gc > 0 {
				gcs++
			}
			if i < 12 {
				slowest += fmt.Sprintf(" %.0f", float64(r.d.Microseconds())/1000)
				if r.gc > 0 {
					slowest += "(gc)"
				}
			}
		}
		n := len(recs)
		b.Logf("node's share: p90 %.1f ms, p95 %.1f ms; %d of %d posts overlapped a GC cycle; slowest (ms):%s",
			float64(recs[n/10].d.Microseconds())/1000, float64(recs[n/20].d.Microseconds())/1000, gcs, n, slowest)
	}()
	var last time.Time
	alloc0 := allocBytes()
	defer func() { // what the GC has to collect, per post (this process: the node, the sender, in-process receivers)
		b.Logf("allocated per post: %d KB", (allocBytes()-alloc0)/uint64(max(1, len(recs)))/1024)
	}()
	for b.Loop() {
		if gap > 0 && !last.IsZero() {
			b.StopTimer()
			time.Sleep(time.Until(last.Add(gap)))
			b.StartTimer()
		}
		last = time.Now()
		gc0 := gcCycles()
		base, pushed := got.Load(), tn.n.Delivered()
		start := time.Now()
		ct, id := make([]byte, 1024), make([]byte, 16)
		rand.Read(ct)
		rand.Read(id)
		// One post, stored once in the group's mailbox for its 999 readers,
		// as the client sends it.
		post := &tokenimv1.Envelope{Id: id, Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_GROUP, Group: group, Ciphertext: ct}
		readers := uint64(len(accts) - 1)
		req := connect.NewRequest(&tokenimv1.SendRequest{Envelopes: []*tokenimv1.Envelope{post}})
		req.Header().Set("Authorization", "Bearer "+owner.Token)
		if _, err := relayAPI.Send(ctx, req); err != nil {
			b.Fatal(err)
		}
		sendLat = append(sendLat, time.Since(start))
		for tn.n.Delivered() < pushed+readers {
			time.Sleep(50 * time.Microsecond)
		}
		nodeLat = append(nodeLat, time.Since(start))
		recs = append(recs, rec{time.Since(start), gcCycles() - gc0})
		for got.Load() < base+int64(readers) {
			time.Sleep(100 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	pct := func(l []time.Duration, p int) float64 {
		slices.Sort(l)
		return float64(l[min(len(l)-1, len(l)*p/100)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(lat, 50), "p50-ms")
	b.ReportMetric(pct(lat, 99), "p99-ms")
	b.ReportMetric(pct(nodeLat, 50), "node-p50-ms")
	b.ReportMetric(pct(nodeLat, 99), "node-p99-ms")
	b.ReportMetric(pct(sendLat, 50), "send-p50-ms") // the Send call: admission and storage
	b.ReportMetric(pct(sendLat, 99), "send-p99-ms")
}

// deviceAPI is a member's own relay client, with its own connections, as
// on its own device.
func deviceAPI(url string) tokenimv1connect.RelayServiceClient {
	return tokenimv1connect.NewRelayServiceClient(client.DefaultHTTPClient(), url)
}

// allocBytes is how many bytes this process has allocated on the heap.
func allocBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// gcCycles is how many GC cycles this process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// stream reads one member's stream and acknowledges as the client does:
// on its AckStream (opened at once, as a device live for a while has it),
// on a ticker every 300 ms started with the stream (members' tickers are
// out of phase, as independent devices are) — in a group's mailbox at most
// every 2 s — and after 128 unacknowledged envelopes.
func stream(ctx context.Context, api tokenimv1connect.RelayServiceClient, token string, ready *sync.WaitGroup, got *atomic.Int64) {
	req := connect.NewRequest(&tokenimv1.ReceiveRequest{})
	req.Header().Set("Authorization", "Bearer "+token)
	s, err := api.Receive(ctx, req)
	if err != nil {
		ready.Done()
		return
	}
	once := sync.OnceFunc(ready.Done)
	var last, acked atomic.Uint64
	var group atomic.Value // the mailbox of the deliveries: the group's
	group.Store("")
	var ackMu sync.Mutex
	acks := api.AckStream(ctx)
	acks.RequestHeader().Set("Authorization", "Bearer "+token)
	// A device that has been live a while has its AckStream open: open it
	// now (an Ack of nothing), not during the first measured posts.
	acks.Send(&tokenimv1.AckRequest{})
	var ackedAt time.Time
	ack := func(tick bool) {
		ackMu.Lock()
		defer ackMu.Unlock()
		g := group.Load().(string)
		if tick && g != "" && time.Since(ackedAt) < 2*time.Second {
			return // a group's read position: every 2 s, as the client sends it
		}
		if l := last.Load(); l > acked.Load() {
			if err := acks.Send(&tokenimv1.AckRequest{Cursor: l, Group: g}); err == nil {
				acked.Store(l)
				ackedAt = time.Now()
			}
		}
	}
	go func() {
		t := time.NewTicker(300 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				ack(true)
			}
		}
	}()
	for s.Receive() {
		if s.Msg().GetCaughtUp() {
			once()
			continue
		}
		group.Store(s.Msg().GetDelivery().GetGroup())
		last.Store(s.Msg().GetDelivery().GetCursor())
		got.Add(1)
		if last.Load()-acked.Load() >= 128 {
			ack(false)
		}
	}
	once()
}

func createBigGroup(b *testing.B, owner loadgen.Account, group string, members []loadgen.Account) {
	ctx := context.Background()
	nodeAPI := tokenimv1connect.NewNodeServiceClient(http.DefaultClient, tn.url())
	st, _ := nodeAPI.Status(ctx, connect.NewRequest(&tokenimv1.StatusRequest{}))
	acct, err := nodeAPI.GetAccount(ctx, connect.NewRequest(&tokenimv1.GetAccountRequest{Handle: owner.Handle}))
	if err != nil {
		b.Fatal(err)
	}
	var hs []string
	for _, m := range members {
		hs = append(hs, m.Handle)
	}
	// The default policy's rate (60 posts a minute) would stop the benchmark:
	// the same rules with a higher rate.
	seq := acct.Msg.Account.Sequence
	pol := group + "-policy"
	dep, err := ledger.SignTx(&tokenimv1.TxBody{ChainId: st.Msg.ChainId, Signer: owner.Handle, Sequence: seq,
		Msg: &tokenimv1.TxBody_DeployPolicy{DeployPolicy: &tokenimv1.DeployPolicy{Name: pol, Source: "rate = 1000000"}}}, owner.Key)
	if err != nil {
		b.Fatal(err)
	}
	if res, err := nodeAPI.BroadcastTx(ctx, connect.NewRequest(&tokenimv1.BroadcastTxRequest{Tx: dep})); err != nil || res.Msg.Code != 0 {
		b.Fatalf("deploy policy: %v %v", err, res)
	}
	raw, err := ledger.SignTx(&tokenimv1.TxBody{ChainId: st.Msg.ChainId, Signer: owner.Handle, Sequence: seq + 1,
		Msg: &tokenimv1.TxBody_CreateGroup{CreateGroup: &tokenimv1.CreateGroup{Name: group, Members: hs, Policy: pol}}}, owner.Key)
	if err != nil {
		b.Fatal(err)
	}
	res, err := nodeAPI.BroadcastTx(ctx, connect.NewRequest(&tokenimv1.BroadcastTxRequest{Tx: raw}))
	if err != nil || res.Msg.Code != 0 {
		b.Fatalf("create group: %v %v", err, res)
	}
	b.Logf("CreateGroup with %d members: %d bytes on chain", len(hs), len(raw))
	add, _ := ledger.SignTx(&tokenimv1.TxBody{ChainId: st.Msg.ChainId, Signer: owner.Handle, Sequence: seq + 2,
		Msg: &tokenimv1.TxBody_GroupAddMember{GroupAddMember: &tokenimv1.GroupAddMember{Group: group, Member: "a_new_member_handle", Role: "member"}}}, owner.Key)
	b.Logf("GroupAddMember to a %d-member group: %d bytes on chain", len(hs)+1, len(add))
}
