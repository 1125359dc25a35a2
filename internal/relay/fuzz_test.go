package relay

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The dedup index value parser never panics, and what it accepts is what
// dedupValue writes.
func FuzzParseDedup(f *testing.F) {
	f.Add(dedupValue(1, 2, "alice"))
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, v []byte) {
		cursor, name, ok := parseDedup(v)
		if !ok {
			return
		}
		if re := dedupValue(binary.BigEndian.Uint64(v[:8]), cursor, name); !bytes.Equal(re, v) {
			t.Fatalf("parse of %x does not round-trip", v)
		}
	})
}
