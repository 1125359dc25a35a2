// Package keystore keeps an account's secret keys in one passphrase-encrypted
// file, <dir>/keystore.age.
//
// Entry points:
//
//   - Generate makes fresh Secrets for a handle: an Ed25519 account key, a
//     Signal identity key pair, a registration id and a random 32-byte
//     storage key (the key of the client's local databases).
//   - Create encrypts Secrets to <dir>/keystore.age with age's scrypt
//     passphrase recipient; Load decrypts them.
//   - Lock takes an exclusive advisory lock on <dir>/lock so that two
//     processes never use one account at the same time.
//
// Invariants:
//
//   - The file is written once: a temporary file is fsynced and then linked
//     (or renamed) into place, so a crash leaves either no keystore or a
//     complete one, and Create never overwrites an existing keystore
//     (ErrExists). The file is mode 0600 and the directory 0700.
//   - The payload is a small versioned binary encoding (see codec.go);
//     anything that does not decode exactly, or whose public keys do not
//     match their private keys, is ErrCorrupt.
//   - Load returns ErrNotFound, ErrWrongPassphrase or ErrCorrupt, never a
//     more detailed decryption error.
//   - Secrets cannot be printed: String, GoString and Format redact every
//     key. Secrets contain a slice, so they cannot be compared with ==.
package keystore
