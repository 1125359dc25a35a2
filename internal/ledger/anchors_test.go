package ledger

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

func (n *testNode) anchor(t testing.TB, _ uint64, a *tokenimv1.AnchorLog) []byte {
	b := n.body(0) // anchors carry no sequence
	if a.NodeKey == nil {
		a.NodeKey = n.key.Public().(ed25519.PublicKey)
	}
	b.Msg = &tokenimv1.TxBody_AnchorLog{AnchorLog: a}
	return sign(t, b, n.key)
}

func logOf(size int) *testonly.Tree {
	tr := testonly.New(rfc6962.DefaultHasher)
	for i := range size {
		tr.AppendData([]byte(fmt.Sprintf("leaf %d", i)))
	}
	return tr
}

// A node anchors its growing log; each anchor must prove consistency with
// the previous one, so a rewritten log, a shrinking or stale anchor, another
// node's key or an unregistered node are refused.
func TestAnchorLog(t *testing.T) {
	m := NewMachine()
	kv := newState(t, 0)
	n := newNode(t, false)
	deliver(t, m, kv, n.register(t, 0, "https://n.example"))
	tr := logOf(10)
	seq := uint64(1)
	ok := func(a *tokenimv1.AnchorLog) {
		t.Helper()
		deliver(t, m, kv, n.anchor(t, seq, a))
		seq++
	}
	refused := func(what string, a *tokenimv1.AnchorLog, want error) {
		t.Helper()
		if _, err := m.Deliver(kv, testBlock, n.anchor(t, seq, a)); !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	}
	if a, _ := GetAnchor(kv, n.id); a != nil {
		t.Fatalf("anchor before any: %v", a)
	}
	ok(&tokenimv1.AnchorLog{TreeSize: 3, RootHash: tr.HashAt(3)})
	got, err := GetAnchor(kv, n.id)
	if err != nil || got.TreeSize != 3 || string(got.RootHash) != string(tr.HashAt(3)) || got.Height != testBlock.Height {
		t.Fatalf("anchor: %v %v", got, err)
	}
	cons, _ := tr.ConsistencyProof(3, 7)
	ok(&tokenimv1.AnchorLog{TreeSize: 7, RootHash: tr.HashAt(7), PrevSize: 3, Consistency: cons})

	fake := testonly.New(rfc6962.DefaultHasher)
	for i := range 9 {
		if i == 4 {
			fake.AppendData([]byte("a changed leaf"))
			continue
		}
		fake.AppendData([]byte(fmt.Sprintf("leaf %d", i)))
	}
	fakeCons, _ := fake.ConsistencyProof(7, 9)
	refused("rewritten log", &tokenimv1.AnchorLog{TreeSize: 9, RootHash: fake.HashAt(9), PrevSize: 7, Consistency: fakeCons}, ErrInvalidAnchor)
	cons9, _ := tr.ConsistencyProof(7, 9)
	refused("wrong root", &tokenimv1.AnchorLog{TreeSize: 9, RootHash: fake.HashAt(9), PrevSize: 7, Consistency: cons9}, ErrInvalidAnchor)
	refused("stale prev_size", &tokenimv1.AnchorLog{TreeSize: 9, RootHash: tr.HashAt(9), PrevSize: 3, Consistency: cons9}, ErrInvalidAnchor)
	refused("no growth", &tokenimv1.AnchorLog{TreeSize: 7, RootHash: tr.HashAt(7), PrevSize: 7}, ErrInvalidAnchor)
	refused("no proof", &tokenimv1.AnchorLog{TreeSize: 9, RootHash: tr.HashAt(9), PrevSize: 7}, ErrInvalidAnchor)
	refused("short root", &tokenimv1.AnchorLog{TreeSize: 9, RootHash: tr.HashAt(9)[:31], PrevSize: 7, Consistency: cons9}, ErrInvalidAnchor)
	other := newNode(t, false)
	refused("another key", &tokenimv1.AnchorLog{TreeSize: 9, RootHash: tr.HashAt(9), PrevSize: 7, Consistency: cons9,
		NodeKey: other.key.Public().(ed25519.PublicKey)}, ErrInvalidAnchor)
	ok(&tokenimv1.AnchorLog{TreeSize: 9, RootHash: tr.HashAt(9), PrevSize: 7, Consistency: cons9})
	if rec, _ := GetNode(kv, n.id); rec.Sequence != 1 {
		t.Fatalf("anchors moved the node's sequence to %d", rec.Sequence)
	}
	replay := n.anchor(t, 0, &tokenimv1.AnchorLog{TreeSize: 7, RootHash: tr.HashAt(7), PrevSize: 3, Consistency: cons})
	if _, err := m.Deliver(kv, testBlock, replay); !errors.Is(err, ErrInvalidAnchor) {
		t.Fatalf("an old anchor replayed: %v", err)
	}
	withSeq := n.body(1)
	withSeq.Msg = &tokenimv1.TxBody_AnchorLog{AnchorLog: &tokenimv1.AnchorLog{TreeSize: 10, RootHash: tr.HashAt(10), PrevSize: 9}}
	if _, err := m.Deliver(kv, testBlock, sign(t, withSeq, n.key)); !errors.Is(err, ErrBadSequence) {
		t.Fatalf("an anchor with a sequence: %v", err)
	}

	if _, err := m.Deliver(kv, testBlock, other.anchor(t, 0, &tokenimv1.AnchorLog{TreeSize: 1, RootHash: tr.HashAt(1)})); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("unregistered node: %v", err)
	}
	if _, err := GetAnchor(kv, "nope"); !errors.Is(err, ErrInvalidNode) {
		t.Fatalf("bad node id: %v", err)
	}
}
