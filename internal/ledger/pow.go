package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// powDigest is SHA-256("tokenim/pow/v1" 0 chainID 0 handle 0 accountKey nonce).
func powDigest(chainID, handle string, accountKey []byte, nonce uint64) [32]byte {
	h := sha256.New()
	h.Write([]byte("tokenim/pow/v1\x00"))
	h.Write([]byte(chainID))
	h.Write([]byte{0})
	h.Write([]byte(handle))
	h.Write([]byte{0})
	h.Write(accountKey)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], nonce)
	h.Write(n[:])
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func leadingZeroBits(d [32]byte) int {
	n := 0
	for _, b := range d {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// CheckWork reports whether nonce meets difficulty for a registration.
func CheckWork(chainID, handle string, accountKey []byte, nonce uint64, difficulty uint32) bool {
	return leadingZeroBits(powDigest(chainID, handle, accountKey, nonce)) >= int(difficulty)
}

// SolveWork finds the smallest nonce meeting difficulty. Expected cost is
// 2^difficulty hashes; callers cap difficulty with MaxPowDifficulty.
func SolveWork(chainID, handle string, accountKey []byte, difficulty uint32) uint64 {
	for nonce := uint64(0); ; nonce++ {
		if CheckWork(chainID, handle, accountKey, nonce, difficulty) {
			return nonce
		}
	}
}
