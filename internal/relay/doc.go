// Package relay is a node's mailbox store: it keeps end-to-end encrypted
// envelopes durably until their recipient acknowledges them, and hands out
// one-time prekeys. It never sees a plaintext.
//
// # Entry points
//
// Open a Store on a directory (a Pebble database), then:
//
//   - Append stores envelopes and returns only once they are on disk
//     (pebble.Sync). Concurrent Append calls share one fsync: a single
//     committer goroutine drains a FIFO queue of requests into one batch
//     (group commit), so envelopes are stored in the order of the calls.
//   - Read, Ack and Subscribe serve a recipient's mailbox: Read pages
//     through it by cursor, Ack deletes up to a cursor, Subscribe wakes a
//     reader when new envelopes were committed. A batch of Acks (and of
//     Forgets) alone is written without an fsync: the next synced batch
//     makes it durable, and one lost in a crash only leaves envelopes the
//     reader had acknowledged (it resumes after its cursor).
//   - PutPrekeys, TakePrekey and PrekeyCount manage one-time prekeys.
//   - Sweep forgets old envelope ids (it also runs at Open and hourly).
//
// All methods are safe for concurrent use. After Close they return ErrClosed.
//
// # Invariants
//
//   - Every stored envelope gets its recipient's next cursor: a uint64 that
//     starts at 1, grows by one per envelope, is persisted with the batch and
//     is never reused, even after Ack deleted the envelope or a restart.
//   - An envelope id is stored at most once: while the envelope is stored
//     and for at least DedupWindow after its admission, an envelope with the
//     same id is reported as a duplicate and not stored again.
//   - An Append call is validated as a whole: if one envelope is invalid,
//     none is stored.
//   - A one-time prekey is handed out at most once.
//
// # Key layout
//
// Names (recipient or account) are stored behind a one-byte length, so the
// key range of one name is never a prefix of another's ("ab" vs "abc").
// Integers are fixed-width big-endian, so byte order is numeric order.
//
//	'v'                          -> layout version (uint64)
//	's'                          -> live envelopes (uint64) | live bytes (uint64)
//	'c' len name                 -> last cursor of name's mailbox (uint64), written
//	                                when envelopes are deleted; the last cursor is
//	                                the larger of it and the newest 'm' key's
//	'm' len name cursor(8)       -> Envelope (deterministic protobuf), or a
//	                                stub: 0x00 | sha256(ciphertext) | Envelope
//	                                without its ciphertext (body.go)
//	'b' sha256(32)               -> a shared ciphertext
//	'r' sha256(32)               -> stubs referring to it (uint64) | its size (uint64)
//	'd' id(16)                   -> admitted ms (uint64) | cursor (uint64) | name
//	't' admitted ms(8) id(16)    -> more ids (16 bytes each): admission-time index
//	                                for Sweep, one entry per batch
//	'p' len name prekey id(4)    -> one-time prekey public key
//	'x' expires ms(8) id(16)     -> more ids: retention index for Expire, one entry
//	                                per batch and retention end
//	'm' len "#group" cursor(8)   -> a group post: 0x01 | sha256(readers) | Envelope
//	                                (its reader list is a shared body under 'b')
//	'a' len "#group" len name    -> name's read position in the group's mailbox
//
// A group post (group.go) is stored once in its group's mailbox, with its
// readers; ReadGroup, AckGroup and Prune serve it. Per-member copies of a
// post (the older form), sent in one Append call, carry one ciphertext: it
// is stored once under 'b' and each copy's 'm' value is a stub.
//
// The committer goroutine is the only writer of 'c', 'm', 'b', 'r', 'a' and 's'
// keys (Ack goes through its queue too) and of new 'd'/'t' entries; Sweep only
// deletes 'd'/'t' entries whose envelope is gone and whose window ended.
package relay
