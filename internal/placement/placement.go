// Package placement decides which nodes store what: rendezvous (highest
// random weight) hashing over the registered nodes.
//
// Replicas(key, nodes, r) scores every node with SHA-256(node || 0 || key)
// and returns the r best, best first. Every node computes the same answer
// from the same registry, no coordination needed; adding a node moves only
// the keys it now wins (about 1/N of them), removing one moves only its own.
//
// Keys: MailboxKey(handle) for a recipient's envelopes, ChunkKey(hash) for a
// file chunk. A mailbox's full replica set adds the recipient's home nodes
// (MailboxReplicas).
package placement

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
)

// MailboxKey is the placement key of a recipient's mailbox.
func MailboxKey(handle string) string { return "mbox/" + handle }

// ChunkKey is the placement key of a file chunk.
func ChunkKey(hash []byte) string { return "chunk/" + hex.EncodeToString(hash) }

func score(node, key string) [32]byte {
	h := sha256.New()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(key))
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// Replicas returns the r nodes (of nodes, which must be distinct) with the
// highest score for key, best first; all of them if r >= len(nodes).
func Replicas(key string, nodes []string, r int) []string {
	type scored struct {
		node string
		s    [32]byte
	}
	all := make([]scored, len(nodes))
	for i, n := range nodes {
		all[i] = scored{n, score(n, key)}
	}
	sort.Slice(all, func(i, j int) bool {
		if c := bytes.Compare(all[i].s[:], all[j].s[:]); c != 0 {
			return c > 0
		}
		return all[i].node < all[j].node
	})
	if r > len(all) {
		r = len(all)
	}
	out := make([]string, r)
	for i := range out {
		out[i] = all[i].node
	}
	return out
}

// MailboxReplicas is the replica set of handle's mailbox: the r rendezvous
// winners plus the handle's home nodes (those that are registered), without
// repeats, winners first.
func MailboxReplicas(handle string, nodes []string, r int, home []string) []string {
	out := Replicas(MailboxKey(handle), nodes, r)
	for _, h := range home {
		if slices.Contains(nodes, h) && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// Quorum is how many of n replicas must store an item before it is
// acknowledged: a majority, so any two quorums share a replica.
func Quorum(n int) int { return n/2 + 1 }
