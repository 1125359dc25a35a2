// Package loadgen drives a node's API with many clients and measures it:
// durable envelopes per second admitted and delivered, and send→receive
// latency at a fixed rate. `tokenim bench` and the e2e benchmark use it.
//
// It registers its own accounts (with the chain's proof of work) and sends
// opaque 1 KB ciphertexts: it measures the node (auth'd sessions, admission,
// group-committed storage, push delivery, acks), not Signal encryption,
// which happens on the clients. Each ciphertext starts with its send time,
// so latency is measured in one process with one clock.
package loadgen
