package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/tokenim/tokenim/client"
	"github.com/tokenim/tokenim/internal/loadgen"
)

// BenchmarkGroupAddMember: the owner of a 1,000-member group adds members
// one by one through the SDK (one signed GroupAddMember transaction each,
// authorized by the group's policy in the block). Reported: wall time per
// add (dominated by the block commit) and the CPU the whole process spent
// per add — the client's share is part of it, so it bounds the client CPU
// from above (the node runs in the same process).
//
//	go test ./e2e -run '^$' -bench GroupAddMember -benchtime 20x
func BenchmarkGroupAddMember(b *testing.B) {
	ctx := context.Background()
	members, err := loadgen.Register(ctx, tn.url(), uniqueHandle("gam"), 999)
	if err != nil {
		b.Fatal(err)
	}
	extra, err := loadgen.Register(ctx, tn.url(), uniqueHandle("gax"), 200)
	if err != nil {
		b.Fatal(err)
	}
	home := b.TempDir()
	owner, err := client.Create(ctx, cfg(home), uniqueHandle("gao"))
	if err != nil {
		b.Fatal(err)
	}
	defer owner.Close()
	var hs []string
	for _, m := range members {
		hs = append(hs, m.Handle)
	}
	group := uniqueHandle("big")
	if err := owner.CreateGroup(ctx, group, hs, ""); err != nil {
		b.Fatal(err)
	}
	var cpu time.Duration
	i := 0
	start := time.Now()
	for b.Loop() {
		if i == len(extra) {
			b.Fatal("out of accounts to add")
		}
		before := processCPU()
		if err := owner.GroupAdd(ctx, group, extra[i].Handle, "member"); err != nil {
			b.Fatal(err)
		}
		cpu += processCPU() - before
		i++
	}
	wall := time.Since(start)
	g, err := owner.Group(ctx, group)
	if err != nil || len(g.Members) != 1000+i {
		b.Fatalf("group has %d members after %d adds: %v", len(g.Members), i, err)
	}
	b.ReportMetric(float64(wall.Microseconds())/1000/float64(i), "wall-ms/add")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(i), "process-cpu-ms/add")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
