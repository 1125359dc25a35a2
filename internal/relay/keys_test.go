package relay

import (
	"bytes"
	"math"
	"testing"
)

// TestKeyRangesDisjoint: one name's key range never holds another name's
// keys, even when one name is a prefix of the other.
func TestKeyRangesDisjoint(t *testing.T) {
	tests := []struct{ a, b string }{
		{"ab", "abc"},
		{"a", "a\x00"},
		{"a", "a\xff"},
		{"b", "a\xff\xff\xff\xff\xff\xff\xff\xff"},
	}
	in := func(k, lo, hi []byte) bool { return bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 }
	for _, tc := range tests {
		for _, pair := range [][2]string{{tc.a, tc.b}, {tc.b, tc.a}} {
			lo, hi := mailBounds(pair[0], 0, math.MaxUint64)
			plo := prekeyPrefix(pair[0])
			phi := prefixEnd(plo)
			for _, c := range []uint64{0, 1, math.MaxUint64} {
				if in(mailKey(pair[1], c), lo, hi) {
					t.Errorf("mail key of %q/%d in the range of %q", pair[1], c, pair[0])
				}
			}
			for _, id := range []uint32{0, math.MaxUint32} {
				if in(prekeyKey(pair[1], id), plo, phi) {
					t.Errorf("prekey %d of %q in the range of %q", id, pair[1], pair[0])
				}
			}
		}
	}
}

func TestMailBounds(t *testing.T) {
	lo, hi := mailBounds("bob", 2, 3)
	for c, want := range map[uint64]bool{1: false, 2: true, 3: true, 4: false} {
		k := mailKey("bob", c)
		if got := bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0; got != want {
			t.Errorf("cursor %d in [2, 3] = %v, want %v", c, got, want)
		}
		if mailCursor(k) != c {
			t.Errorf("mailCursor(mailKey(%d)) = %d", c, mailCursor(k))
		}
	}
}
