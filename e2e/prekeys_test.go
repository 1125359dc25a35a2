package e2e

import (
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/tokenim/tokenim/client"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/gen/tokenim/v1/tokenimv1connect"
)

// One-time prekeys are handed out once each; a client whose stock runs low
// uploads more on its next sync.
func TestPrekeysHandedOutOnceAndToppedUp(t *testing.T) {
	ctx := ctxT(t)
	bob, _ := newUser(t, "hank")
	if n, err := bob.PrekeysOnNode(ctx); err != nil || n != client.InitialPrekeys {
		t.Fatalf("prekeys after create: %d, %v", n, err)
	}
	token := newRawUser(t, uniqueHandle("drain")).session(t)
	relayAPI := tokenimv1connect.NewRelayServiceClient(http.DefaultClient, tn.url())
	seen := map[uint32]bool{}
	const taken = 60
	for range taken {
		req := connect.NewRequest(&tokenimv1.GetPrekeyBundleRequest{Handle: bob.Handle()})
		req.Header().Set("Authorization", "Bearer "+token)
		res, err := relayAPI.GetPrekeyBundle(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		id := res.Msg.OneTimePrekey.GetId()
		if res.Msg.OneTimePrekey == nil || seen[id] {
			t.Fatalf("prekey %d handed out twice (or none left)", id)
		}
		seen[id] = true
	}
	if n, _ := bob.PrekeysOnNode(ctx); n != client.InitialPrekeys-taken {
		t.Fatalf("prekeys after %d bundles: %d", taken, n)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := bob.PrekeysOnNode(ctx); n != client.InitialPrekeys {
		t.Fatalf("prekeys after top-up: %d", n)
	}
	// A sender who got one of the new prekeys can still reach bob.
	alice, _ := newUser(t, "ivy")
	if _, err := alice.Send(ctx, bob.Handle(), "after top-up"); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Sync(ctx)
	if err != nil || len(got) != 1 || got[0].Text != "after top-up" {
		t.Fatalf("sync: %v %v", got, err)
	}
}
