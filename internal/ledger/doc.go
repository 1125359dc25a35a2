// Package ledger is TokenIM's replicated state machine: the ABCI application
// that CometBFT runs on every node.
//
// The core is pure: Machine.Deliver applies one signed transaction to a KV
// (the working state) for a given block context and returns a Result (the
// validator set changes it applied) or an error with a result code;
// Machine.Check does the same checks without writing. Neither reads a
// clock, iterates a Go map or uses floats, so every node computes the same
// state.
//
// App wraps the core for CometBFT (Info, InitChain, CheckTx, FinalizeBlock,
// Commit, Query) and keeps the state in an IAVL tree (github.com/cosmos/iavl),
// saved once per block, so the app hash commits to the whole state and the
// tree version equals the block height. FinalizeBlock returns the block's
// net validator changes to CometBFT.
//
// Transactions (proto tokenim.v1.Tx) carry a TxBody signed by its signer
// and the signer's next sequence number: a replayed or reordered
// transaction is rejected. Signers are accounts (TxBody.signer = handle,
// Ed25519 account key) and nodes (TxBody.signer = NodeSigner(id), the
// CometBFT node key, id = NodeID(key)). The state is split among modules,
// each owning a key prefix and its messages (registered in modules.go):
// accounts (RegisterAccount, RotateSignedPrekey, SetHomeNodes), nodes
// (RegisterNode) and validators (ProposeValidator, ApproveValidator).
//
// Invariants: account handles are unique and lowercase; an account's or a
// node's sequence only grows; every key change is appended to the account's
// key history and never rewritten; a node's id is the hash of its key and a
// node names a validator key only with the key's signature; the validator
// set is never empty and changes only by approvals of more than 2/3 of its
// power.
package ledger
