// Package e2e holds TokenIM's end-to-end tests: one in-process node per test
// binary (TestMain), driven only through the public client SDK and the node
// API, like a user or a bot would.
package e2e
