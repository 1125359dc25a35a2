// Package client is the TokenIM client SDK: what the CLI, the web client and
// bots use to hold an account's keys and chat end to end encrypted.
//
// A Client owns one account in a home directory (<home>/client): the
// passphrase-encrypted keystore (age, scrypt), the Signal protocol stores
// and the local message history (bbolt, every value encrypted with a key
// from the keystore). It talks to one node over the node API.
//
//	c, err := client.Create(ctx, client.Config{Home: dir, Passphrase: pw}, "alice") // register on chain
//	c, err := client.Open(ctx, client.Config{Home: dir, Passphrase: pw})            // later
//	defer c.Close()
//	msg, err := c.Send(ctx, "@bob", "hello")
//	msgs, err := c.Sync(ctx)               // fetch, decrypt, store and acknowledge
//	err = c.Listen(ctx, func(m client.Message) { … }) // live
//	msg, err = c.SendFile(ctx, "@bob", "report.pdf", nil)    // chunked, encrypted with a fresh key
//	path, err := c.FetchFile(ctx, m.ID, ".", nil)           // m.File != nil: every chunk verified
//
// A message the network cannot take yet (the node unreachable, too few of
// the recipient's storage nodes up, the call cut short) is not lost: Send
// returns it, in state StateQueued, with an error wrapping ErrQueued (and
// why); it waits in the outbox (sealed, or, if sealing needs the network —
// a first message's prekey bundle, a group's proven member list — sealed
// when its turn comes) and goes out with the next send to that
// conversation, the next Sync, or every 5 s while Listen runs (FlushOutbox
// does it now; OnOutboxSent tells when).
//
// An outgoing message's State goes sending → stored (on the node's disk) →
// delivered (1:1: the recipient's device sent back a receipt — an
// end-to-end encrypted Receipt listing the ids it stored, one per sender
// for what one Ack covers; none in groups, where a post would bring 999
// back). Verify adds the proof that it was anchored.
//
// Invariants: private keys and plaintexts never leave the client; a
// Signal session is only built from a bundle whose identity key equals the
// chain's record for that handle, and a received first message is only
// accepted if its identity key equals the chain's record for the sender; an
// envelope is acknowledged to the node only after its plaintext is stored
// locally, so a crash loses nothing (a redelivered envelope is recognised by
// its id).
package client
