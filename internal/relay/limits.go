package relay

import "time"

// Caps on relay inputs, and defaults.
const (
	// IDSize is the length of an envelope id.
	IDSize = 16
	// MaxCiphertext caps an envelope's ciphertext: 64 KiB of padded content
	// plus 1 KiB of slack for the Signal message framing.
	MaxCiphertext = 64<<10 + 1<<10
	// MaxName caps a recipient or account name in bytes (keys store it
	// behind a one-byte length).
	MaxName = 255
	// MaxAppendEnvelopes caps the envelopes in one Append call.
	MaxAppendEnvelopes = 1024
	// MaxCommitEnvelopes and MaxCommitBytes bound one group commit: the
	// committer takes whole requests from the queue until one is reached
	// (a single larger request is committed on its own).
	MaxCommitEnvelopes = 4096
	MaxCommitBytes     = 32 << 20
	// MaxReadLimit caps the deliveries one Read returns; a larger or
	// non-positive limit means MaxReadLimit.
	MaxReadLimit = 1024
	// MaxPrekeysPerAccount caps the one-time prekeys stored per account.
	MaxPrekeysPerAccount = 1000
	// MaxPrekeyBytes caps a one-time prekey's public key.
	MaxPrekeyBytes = 64
	// MaxSweepBatch caps the dedup entries one Sweep batch deletes.
	MaxSweepBatch = 4096
	// CommitmentSize is the size of Envelope.commitment (SHA-256).
	CommitmentSize = 32

	// DefaultDedupWindow is Options.DedupWindow when zero.
	DefaultDedupWindow = 7 * 24 * time.Hour
	// SweepInterval is how often the background sweeper runs.
	SweepInterval = time.Hour

	// layoutVersion is the version of the key layout (see the package doc).
	layoutVersion = 1
	// bloomBitsPerKey sizes Pebble's Bloom filters (about 1% false positives).
	bloomBitsPerKey = 10
	// cacheBytes and memTableBytes size Pebble's block cache and memtables.
	cacheBytes    = 64 << 20
	memTableBytes = 32 << 20
	// prekeyStripes is how many locks serialize prekey writes (by account).
	prekeyStripes = 64
)
