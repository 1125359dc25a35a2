package relay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// Key tags; the layout is documented in the package comment.
const (
	tagVersion byte = 'v'
	tagStats   byte = 's'
	tagCounter byte = 'c'
	tagMail    byte = 'm'
	tagDedup   byte = 'd'
	tagAdmit   byte = 't'
	tagPrekey  byte = 'p'
	tagExpiry  byte = 'x'
	tagBody    byte = 'b' // shared ciphertexts (body.go)
	tagBodyRef byte = 'r'
	tagLog     byte = 'L' // the message log (package msglog)
)

// nameKey returns tag | len(name) | name, with room for extra bytes.
// Callers have checked len(name) <= MaxName.
func nameKey(tag byte, name string, extra int) []byte {
	k := make([]byte, 0, 2+len(name)+extra)
	k = append(k, tag, byte(len(name)))
	return append(k, name...)
}

func counterKey(name string) []byte { return nameKey(tagCounter, name, 0) }

func mailKey(name string, cursor uint64) []byte {
	return binary.BigEndian.AppendUint64(nameKey(tagMail, name, 8), cursor)
}

// mailBounds returns the key range [lower, upper) of name's cursors lo..hi.
func mailBounds(name string, lo, hi uint64) (lower, upper []byte) {
	lower = mailKey(name, lo)
	if hi == math.MaxUint64 {
		return lower, prefixEnd(nameKey(tagMail, name, 0))
	}
	return lower, mailKey(name, hi+1)
}

// mailCursor returns the cursor at the end of a mail key.
func mailCursor(key []byte) uint64 { return binary.BigEndian.Uint64(key[len(key)-8:]) }

func dedupKey(id []byte) []byte { return append([]byte{tagDedup}, id...) }

func dedupValue(ms, cursor uint64, name string) []byte {
	v := make([]byte, 0, 16+len(name))
	v = binary.BigEndian.AppendUint64(v, ms)
	v = binary.BigEndian.AppendUint64(v, cursor)
	return append(v, name...)
}

// parseDedup splits a dedup value into its cursor and recipient.
func parseDedup(v []byte) (cursor uint64, name string, ok bool) {
	if len(v) < 17 || len(v) > 16+MaxName {
		return 0, "", false
	}
	return binary.BigEndian.Uint64(v[8:16]), string(v[16:]), true
}

func admitKey(ms uint64, id []byte) []byte {
	k := binary.BigEndian.AppendUint64([]byte{tagAdmit}, ms)
	return append(k, id...)
}

func prekeyPrefix(account string) []byte { return nameKey(tagPrekey, account, 0) }

func prekeyKey(account string, id uint32) []byte {
	return binary.BigEndian.AppendUint32(nameKey(tagPrekey, account, 4), id)
}

// prekeyID returns the prekey id at the end of a prekey key.
func prekeyID(key []byte) uint32 { return binary.BigEndian.Uint32(key[len(key)-4:]) }

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

func putUint64s(a, b uint64) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), a)
	return binary.BigEndian.AppendUint64(v, b)
}

// unixMs converts Unix milliseconds for the admission index, clamping
// times before 1970 to 0.
func unixMs(ms int64) uint64 {
	if ms < 0 {
		return 0
	}
	return uint64(ms)
}

// expiryKey indexes an envelope by the time its retention ends.
func expiryKey(ms uint64, id []byte) []byte {
	k := binary.BigEndian.AppendUint64([]byte{tagExpiry}, ms)
	return append(k, id...)
}

// joinIDs concatenates ids (an index entry's value: the ids after the one
// in its key).
func joinIDs(ids [][IDSize]byte) []byte {
	if len(ids) == 0 {
		return nil
	}
	v := make([]byte, 0, len(ids)*IDSize)
	for _, id := range ids {
		v = append(v, id[:]...)
	}
	return v
}

// indexIDs returns the ids of an admission or retention index entry: the
// one in its key (after tag and time), then those in its value.
func indexIDs(key, value []byte) ([][]byte, error) {
	if len(key) != 1+8+IDSize || len(value)%IDSize != 0 {
		return nil, fmt.Errorf("%w: index entry %x (%d bytes of ids)", ErrCorrupt, key, len(value))
	}
	ids := [][]byte{bytes.Clone(key[1+8:])}
	for v := value; len(v) > 0; v = v[IDSize:] {
		ids = append(ids, bytes.Clone(v[:IDSize]))
	}
	return ids, nil
}
