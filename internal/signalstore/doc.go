// Package signalstore is the client's persistent libsignal store: one bbolt
// file holding identities, prekeys, signed prekeys, 1:1 sessions and group
// sender keys, plus a small encrypted key/value space for the client's own
// local data (history, settings).
//
// Entry points: Open returns a *Store, which implements libsignal's
// store.SignalProtocol (IdentityKey, PreKey, SignedPreKey, Session and the
// groups' SenderKey), so it can be handed to session.NewBuilderFromSignal,
// session.NewBuilder and groups.NewGroupSessionBuilder. Put, Get, ForEach,
// Delete and Update are the generic key/value helpers.
//
// Invariants:
//
//   - Every value is sealed with XChaCha20-Poly1305 under a key derived
//     (HKDF-SHA256) from the 32-byte key given to Open and a random per-file
//     salt, with a fresh random 24-byte nonce. The additional data binds
//     the value to its bucket and key, so values cannot be moved between
//     keys, buckets or files. A value that fails authentication is
//     ErrCorrupt, with no further detail.
//   - An encrypted check value written at creation detects a wrong key at
//     Open (ErrWrongKey); the local identity public key recorded at
//     creation must match the one passed to later Opens (ErrIdentityMismatch).
//   - Keys are stored in the clear, so the client's own bucket keys are
//     metadata visible to anyone holding the file; do not put secrets in
//     them. Keys of libsignal records that name a peer (sessions,
//     identities, sender keys) are blinded with HMAC-SHA256 under a derived
//     key, so the file does not list who the user talks with.
//   - Identity trust is trust on first use: IsTrustedIdentity accepts a key
//     when none is recorded for the address or when it equals the recorded
//     one. To accept a changed key after checking it elsewhere, call
//     SaveIdentity with the new key.
//   - libsignal loads a record, changes it and stores it back in separate
//     transactions: callers must not run two cipher operations for the same
//     peer at the same time.
package signalstore
