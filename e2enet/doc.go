// Package e2enet holds TokenIM's multi-node end-to-end tests: one network
// of four validators on 127.0.0.1 in this test process (TestMain), driven
// through the client SDK and the node API.
package e2enet
