// Package ledger is TokenIM's replicated state machine: the ABCI application
// that CometBFT runs on every node.
//
// The core is pure: Machine.Deliver applies one signed transaction to a KV
// (the working state) for a given block context and returns a result code;
// Machine.Check does the same checks without writing. Neither reads a clock,
// iterates a Go map or uses floats, so every node computes the same state.
//
// App wraps the core for CometBFT (Info, InitChain, CheckTx, FinalizeBlock,
// Commit, Query) and keeps the state in an IAVL tree (github.com/cosmos/iavl),
// saved once per block, so the app hash commits to the whole state and the
// tree version equals the block height.
//
// Transactions (proto tokenim.v1.Tx) carry a TxBody signed with the signer's
// Ed25519 account key and the account's next sequence number: a replayed or
// reordered transaction is rejected. The state is split among modules, each
// owning a key prefix and its messages; they are registered in modules.go.
//
// Invariants: account handles are unique and lowercase; an account's
// sequence only grows; every key change is appended to the account's key
// history and never rewritten.
package ledger
