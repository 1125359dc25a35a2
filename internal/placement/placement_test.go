package placement

import (
	"fmt"
	"slices"
	"testing"
)

func nodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node%02d", i)
	}
	return out
}

func TestReplicasDeterministicAndDistinct(t *testing.T) {
	ns := nodes(10)
	a := Replicas("mbox/alice", ns, 3)
	rev := slices.Clone(ns)
	slices.Reverse(rev)
	b := Replicas("mbox/alice", rev, 3)
	if !slices.Equal(a, b) {
		t.Fatalf("order of the node list changed the answer: %v vs %v", a, b)
	}
	if len(a) != 3 || a[0] == a[1] || a[1] == a[2] || a[0] == a[2] {
		t.Fatalf("not 3 distinct replicas: %v", a)
	}
	if got := Replicas("k", ns[:2], 3); len(got) != 2 {
		t.Fatalf("r above n: %v", got)
	}
	if got := Replicas("k", nil, 3); len(got) != 0 {
		t.Fatalf("no nodes: %v", got)
	}
}

// Adding a node moves only the keys the new node wins; the load is even.
func TestAddingANodeMovesOnlyItsShare(t *testing.T) {
	const keys, r = 3000, 3
	before, after := nodes(8), nodes(9)
	moved := 0
	load := map[string]int{}
	for k := range keys {
		key := MailboxKey(fmt.Sprintf("user%d", k))
		a, b := Replicas(key, before, r), Replicas(key, after, r)
		for _, n := range b {
			load[n]++
			if !slices.Contains(a, n) {
				moved++
				if n != "node08" {
					t.Fatalf("key %s moved to an old node %s", key, n)
				}
			}
		}
	}
	// The new node should get about r/9 of the placements.
	want := keys * r / 9
	if moved < want*8/10 || moved > want*12/10 {
		t.Fatalf("new node took %d placements, expected about %d", moved, want)
	}
	for n, l := range load {
		if l < want*8/10 || l > want*12/10 {
			t.Fatalf("uneven load: %s has %d, expected about %d", n, l, want)
		}
	}
}

func TestMailboxReplicasAddsHomeNodes(t *testing.T) {
	ns := nodes(6)
	base := Replicas(MailboxKey("bob"), ns, 2)
	var outsider string
	for _, n := range ns {
		if !slices.Contains(base, n) {
			outsider = n
			break
		}
	}
	got := MailboxReplicas("bob", ns, 2, []string{base[0], outsider, "unregistered"})
	want := append(slices.Clone(base), outsider)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestQuorum(t *testing.T) {
	for n, q := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3} {
		if Quorum(n) != q {
			t.Errorf("Quorum(%d) = %d, want %d", n, Quorum(n), q)
		}
	}
}
