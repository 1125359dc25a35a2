package ledger

import (
	"context"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	ics23 "github.com/cosmos/ics23/go"
)

// The committed state proves a registered account (membership) and a
// missing one (non-membership) against the root, with IAVL's ICS23 spec;
// a changed value does not verify.
func TestProveKey(t *testing.T) {
	app := openTestApp(t, t.TempDir())
	defer app.Close()
	alice := newUser(t, "alice")
	if _, err := app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, InitialHeight: 1,
		AppStateBytes: []byte(`{"params":{"powDifficulty":2}}`), Validators: []abci.ValidatorUpdate{abci.Ed25519ValidatorUpdate(newNode(t, true).valPub(), 10)}}); err != nil {
		t.Fatal(err)
	}
	runBlock(t, app, 1, sign(t, alice.registerBody(t, 2), alice.key))
	val, p, root, version, err := app.ProveKey(AccountStateKey("alice"))
	if err != nil || val == nil || version != 1 {
		t.Fatalf("prove alice: %v %v %d", val, err, version)
	}
	if !ics23.VerifyMembership(ics23.IavlSpec, root, p, AccountStateKey("alice"), val) {
		t.Fatal("membership proof does not verify")
	}
	acct, err := DecodeAccountValue(val)
	if err != nil || acct.Handle != "alice" {
		t.Fatalf("decode: %v %v", acct, err)
	}
	forged := append([]byte(nil), val...)
	forged[len(forged)-1] ^= 1
	if ics23.VerifyMembership(ics23.IavlSpec, root, p, AccountStateKey("alice"), forged) {
		t.Fatal("a forged value verifies")
	}
	none, np, root2, _, err := app.ProveKey(AccountStateKey("nobody"))
	if err != nil || none != nil {
		t.Fatalf("prove nobody: %v %v", none, err)
	}
	if !ics23.VerifyNonMembership(ics23.IavlSpec, root2, np, AccountStateKey("nobody")) {
		t.Fatal("non-membership proof does not verify")
	}
	if ics23.VerifyNonMembership(ics23.IavlSpec, root, np, AccountStateKey("alice")) {
		t.Fatal("non-membership of an existing account verifies")
	}
}
