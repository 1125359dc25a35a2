package ledger

import (
	"bytes"
	"context"
	"errors"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	ics23 "github.com/cosmos/ics23/go"
)

// The committed state proves a registered account (membership) and a
// missing one (non-membership) against the root, with IAVL's ICS23 spec;
// a changed value does not verify.
func TestProveKey(t *testing.T) {
	app, _ := aliceOnChain(t)
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

// Every version stays provable: the state block 1 left still proves alice's
// first key after block 2 rotated it, against block 1's root; a version not
// committed yet is refused.
func TestProveKeyAt(t *testing.T) {
	app, alice := aliceOnChain(t)
	v1, _, root1, _, err := app.ProveKey(AccountStateKey("alice"))
	if err != nil {
		t.Fatal(err)
	}
	runBlock(t, app, 2, sign(t, alice.rotateBody(t, 1), alice.key))
	v2, _, root2, version, err := app.ProveKey(AccountStateKey("alice"))
	if err != nil || version != 2 || bytes.Equal(v1, v2) || bytes.Equal(root1, root2) {
		t.Fatalf("after the rotation: version %d, value changed %v, root changed %v, %v", version, !bytes.Equal(v1, v2), !bytes.Equal(root1, root2), err)
	}
	old, p, root, version, err := app.ProveKeyAt(AccountStateKey("alice"), 1)
	if err != nil || version != 1 || !bytes.Equal(old, v1) || !bytes.Equal(root, root1) {
		t.Fatalf("at 1: version %d, old value %v, old root %v, %v", version, bytes.Equal(old, v1), bytes.Equal(root, root1), err)
	}
	if !ics23.VerifyMembership(ics23.IavlSpec, root1, p, AccountStateKey("alice"), v1) {
		t.Fatal("the past value does not verify against the past root")
	}
	if ics23.VerifyMembership(ics23.IavlSpec, root2, p, AccountStateKey("alice"), v1) {
		t.Fatal("the past value verifies against the latest root")
	}
	for _, bad := range []int64{3, -1} {
		if _, _, _, _, err := app.ProveKeyAt(AccountStateKey("alice"), bad); !errors.Is(err, ErrNoVersion) {
			t.Fatalf("version %d: %v", bad, err)
		}
	}
	// A version this node no longer keeps is told apart from one not
	// committed yet.
	runBlock(t, app, 3)
	if err := app.tree.DeleteVersionsTo(1); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := app.ProveKeyAt(AccountStateKey("alice"), 1); !errors.Is(err, ErrVersionGone) {
		t.Fatalf("a deleted version: %v", err)
	}
}

// aliceOnChain is an app whose block 1 registered alice.
func aliceOnChain(t *testing.T) (*App, *testUser) {
	t.Helper()
	app := openTestApp(t, t.TempDir())
	t.Cleanup(func() { app.Close() })
	alice := newUser(t, "alice")
	if _, err := app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, InitialHeight: 1,
		AppStateBytes: []byte(`{"params":{"powDifficulty":2}}`), Validators: []abci.ValidatorUpdate{abci.Ed25519ValidatorUpdate(newNode(t, true).valPub(), 10)}}); err != nil {
		t.Fatal(err)
	}
	runBlock(t, app, 1, sign(t, alice.registerBody(t, 2), alice.key))
	return app, alice
}
