// Package node runs a TokenIM node in one process: CometBFT (consensus, p2p,
// block store) with the ledger as its ABCI application, the relay's durable
// envelope store, and the node API (Connect RPC over HTTP, /healthz,
// /metrics).
//
// Entry points: Init writes a node home (CometBFT config, keys, a
// single-validator genesis, TokenIM settings); Start opens it and serves
// until Stop. Layout of a node home (<home>/node):
//
//	config/config.toml, genesis.json, node_key.json, priv_validator_key.json
//	config/tokenim.json   API address and other TokenIM settings
//	data/                 CometBFT's block store, state and WAL
//	data/ledger.db        the ledger's IAVL state
//	data/relay/           the relay's Pebble store (envelopes, prekeys)
//
// Invariants: the node never sees a plaintext or a client's private key;
// an envelope is acknowledged to its sender only after it is on disk.
package node
