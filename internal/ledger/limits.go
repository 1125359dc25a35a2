package ledger

// Caps on ledger inputs.
const (
	// MaxTxBytes caps an encoded Tx.
	MaxTxBytes = 4096
	// MaxQueryPath caps an ABCI query path.
	MaxQueryPath = 128
	// MinHandle and MaxHandle bound a handle's length.
	MinHandle = 3
	MaxHandle = 32
	// MaxPowDifficulty caps the proof-of-work parameter (bits).
	MaxPowDifficulty = 40
	// DefaultPowDifficulty is the difficulty `tokenim node init` puts in a
	// new genesis: about 65,000 hashes, tens of milliseconds on a laptop.
	DefaultPowDifficulty = 16
)
