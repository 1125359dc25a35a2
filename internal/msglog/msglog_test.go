package msglog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/testonly"
)

func openDB(t testing.TB, dir string) *pebble.DB {
	t.Helper()
	// The relay's memtable size: the log lives in the relay's database.
	db, err := pebble.Open(dir, &pebble.Options{MemTableSize: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func leafN(i int) (id, data []byte) {
	id = make([]byte, 16)
	binary.BigEndian.PutUint64(id[8:], uint64(i))
	return id, LeafData(id, []byte(fmt.Sprintf("ciphertext %d", i)), nil)
}

func appendN(t testing.TB, l *Log, ref *testonly.Tree, from, n int) {
	t.Helper()
	var ids, leaves [][]byte
	for i := from; i < from+n; i++ {
		id, d := leafN(i)
		ids, leaves = append(ids, id), append(leaves, d)
		if ref != nil {
			ref.AppendData(d)
		}
	}
	if _, err := l.Append(ids, leaves); err != nil {
		t.Fatal(err)
	}
}

// Every root, inclusion proof and consistency proof of a log grown in
// uneven batches matches an independent reference tree and verifies with
// the merkle module's verifiers; the log survives a reopen.
func TestProofsMatchReference(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	l, err := New(db, 'L')
	if err != nil {
		t.Fatal(err)
	}
	ref := testonly.New(hasher)
	for n, batch := 0, 1; n < 140; n, batch = n+batch, batch%7+1 {
		appendN(t, l, ref, n, batch)
	}
	check := func(l *Log) {
		size := l.Size()
		if size != ref.Size() {
			t.Fatalf("size %d, reference %d", size, ref.Size())
		}
		for s := uint64(1); s <= size; s++ {
			root, err := l.Root(s)
			if err != nil || !bytes.Equal(root, ref.HashAt(s)) {
				t.Fatalf("root(%d): %x %v", s, root, err)
			}
			for i := uint64(0); i < s; i += 1 + s/9 {
				p, err := l.Inclusion(i, s)
				if err != nil {
					t.Fatal(err)
				}
				if err := proof.VerifyInclusion(hasher, i, s, ref.LeafHash(i), p, root); err != nil {
					t.Fatalf("inclusion %d/%d: %v", i, s, err)
				}
			}
			for s1 := uint64(0); s1 <= s; s1 += 1 + s/11 {
				p, err := l.Consistency(s1, s)
				if err != nil {
					t.Fatal(err)
				}
				if err := proof.VerifyConsistency(hasher, s1, s, p, ref.HashAt(s1), root); err != nil {
					t.Fatalf("consistency %d→%d: %v", s1, s, err)
				}
			}
		}
		id, _ := leafN(77)
		if idx, ok, err := l.IndexOf(id); err != nil || !ok || idx != 77 {
			t.Fatalf("IndexOf(77): %d %v %v", idx, ok, err)
		}
		if _, ok, _ := l.IndexOf(bytes.Repeat([]byte{0xff}, 16)); ok {
			t.Fatal("IndexOf of an unknown id")
		}
	}
	check(l)
	db.Close()
	db = openDB(t, dir)
	defer db.Close()
	if l, err = New(db, 'L'); err != nil {
		t.Fatal(err)
	}
	check(l)
	appendN(t, l, ref, 140, 3) // appends go on where they stopped
	check(l)
	if _, err := l.Inclusion(l.Size(), l.Size()); !errors.Is(err, ErrRange) {
		t.Fatalf("inclusion beyond: %v", err)
	}
	if _, err := l.Root(l.Size() + 1); !errors.Is(err, ErrRange) {
		t.Fatalf("root beyond: %v", err)
	}
}

// A batch that was staged but not committed leaves the log as it was, and
// the next append continues from the committed size.
func TestDiscardedBatch(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l, _ := New(db, 'L')
	ref := testonly.New(hasher)
	appendN(t, l, ref, 0, 5)
	b := db.NewBatch()
	id, d := leafN(99)
	if _, err := l.Stage(b, [][]byte{id}, [][]byte{d}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := l.Committed(false); err != nil {
		t.Fatal(err)
	}
	if l.Size() != 5 {
		t.Fatalf("size %d after a discarded batch", l.Size())
	}
	appendN(t, l, ref, 5, 2)
	if root, _ := l.Root(7); !bytes.Equal(root, ref.HashAt(7)) {
		t.Fatal("root after a discarded batch differs")
	}
	if _, ok, _ := l.IndexOf(id); ok {
		t.Fatal("the discarded leaf is indexed")
	}
}

// Readers see only committed leaves while a writer appends (run with -race).
func TestConcurrentReads(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l, _ := New(db, 'L')
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if s := l.Size(); s > 0 {
				root, err := l.Root(s)
				if err != nil {
					t.Error(err)
					return
				}
				p, err := l.Inclusion(s-1, s)
				if err != nil {
					t.Error(err)
					return
				}
				_, d := leafN(int(s - 1))
				if err := proof.VerifyInclusion(hasher, s-1, s, LeafHash(d), p, root); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for i := 0; i < 200; i += 4 {
		appendN(t, l, nil, i, 4)
	}
	close(stop)
	wg.Wait()
}

// BenchmarkAppend: leaves appended per second, in batches like the relay's
// group commit. "synced": each batch commits with its own fsync (Append);
// "staged": leaves staged into a batch that commits without an fsync of its
// own — how the relay uses the log, its envelopes' fsync covering both.
//
//	go test ./internal/msglog -run '^$' -bench Append
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{64, 1024} {
		b.Run(fmt.Sprintf("staged%d", batch), func(b *testing.B) {
			db := openDB(b, b.TempDir())
			defer db.Close()
			l, _ := New(db, 'L')
			ids, leaves := make([][]byte, batch), make([][]byte, batch)
			for i := range batch {
				ids[i], leaves[i] = leafN(i) // leaf data as the relay computes it, outside the timing
			}
			n := 0
			for b.Loop() {
				for i := range batch {
					binary.BigEndian.PutUint64(ids[i][:8], uint64(n)) // fresh ids for the index
					n++
				}
				bt := db.NewBatch()
				if _, err := l.Stage(bt, ids, leaves); err != nil {
					b.Fatal(err)
				}
				err := bt.Commit(pebble.NoSync)
				bt.Close()
				if err := l.Committed(err == nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "leaves/s")
		})
		b.Run(fmt.Sprintf("synced%d", batch), func(b *testing.B) {
			db := openDB(b, b.TempDir())
			defer db.Close()
			l, _ := New(db, 'L')
			ids, leaves := make([][]byte, batch), make([][]byte, batch)
			n := 0
			for b.Loop() {
				for i := range batch {
					ids[i], leaves[i] = leafN(n)
					n++
				}
				if _, err := l.Append(ids, leaves); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "leaves/s")
		})
	}
}

// Nodes at levels 1 to unstoredLevels are not written; the nodes stored
// are the leaves and 1/8 more, and a proof that needs an unstored node
// over a missing leaf reports the log corrupt instead of a wrong proof.
func TestUnstoredLevels(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l, err := New(db, 'L')
	if err != nil {
		t.Fatal(err)
	}
	ref := testonly.New(hasher)
	appendN(t, l, ref, 0, 1000)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: l.key('n'), UpperBound: l.key('n' + 1)})
	if err != nil {
		t.Fatal(err)
	}
	perLevel := map[byte]int{}
	for it.First(); it.Valid(); it.Next() {
		perLevel[it.Key()[2]]++
	}
	it.Close()
	total := 0
	for level, n := range perLevel {
		if level >= 1 && level <= unstoredLevels {
			t.Errorf("%d nodes stored at level %d", n, level)
		}
		total += n
	}
	if perLevel[0] != 1000 || total > 1000+1000/8 {
		t.Fatalf("%d leaves and %d nodes in all stored for 1,000 leaves: %v", perLevel[0], total, perLevel)
	}
	root, err := l.Root(1000)
	if err != nil || !bytes.Equal(root, ref.HashAt(1000)) {
		t.Fatalf("root: %x %v", root, err)
	}
	if err := db.Delete(l.nodeKey(compact.NewNodeID(0, 5)), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Inclusion(0, 1000); !errors.Is(err, ErrCorrupt) { // needs node 2/1, over leaf 5
		t.Fatalf("inclusion over a missing leaf: %v", err)
	}
}
