package ledger

import "math"

// Caps on ledger inputs.
const (
	// MaxTxBytes caps an encoded Tx.
	// (policy sources go in transactions: up to 16 KiB.)
	MaxTxBytes = 24 << 10
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
	// MaxAPIURL caps a node's advertised API URL (bytes).
	MaxAPIURL = 256
	// MaxHomeNodes caps an account's home nodes.
	MaxHomeNodes = 3
	// MaxNodes caps the node registry, which keeps one index record of
	// every node id (about 42 bytes each).
	MaxNodes = 1024
	// MaxValidatorPower caps one validator's voting power.
	MaxValidatorPower = 1_000_000_000_000
	// maxTotalPower is CometBFT's cap on the validator set's total power
	// (types.MaxTotalVotingPower): an update above it would halt the chain.
	maxTotalPower = int64(math.MaxInt64) / 8
	// DefaultReplicationFactor is the replication factor when the genesis
	// leaves it 0; MaxReplicationFactor caps it.
	DefaultReplicationFactor = 3
	MaxReplicationFactor     = 16
)
