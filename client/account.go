package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/keystore"
	"github.com/tokenim/tokenim/internal/ledger"
	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/util/keyhelper"
)

const (
	bucketMeta        = "meta"
	metaNextPrekey    = "next_prekey_id"
	metaSignedPrekey  = "signed_prekey_id"
	signedPrekeyFirst = 1
	maxPrekeyID       = 0xFFFFFF
)

// Create makes a new account in cfg.Home: fresh keys, an encrypted
// keystore, registration on chain (with the chain's proof of work) and the
// upload of one-time prekeys to the node. On failure nothing is left
// behind — except when the registration was sent but is not on chain yet
// (the chain stalls, the node went away while it waited): the home then
// keeps the keys, the error wraps ErrRegistrationPending, and opening the
// home (or Create in it again) finishes the registration, so the handle
// registered with these keys is never lost.
func Create(ctx context.Context, cfg Config, handle string) (*Client, error) {
	h, err := ledger.NormalizeHandle(handle)
	if err != nil {
		return nil, err
	}
	dir := Dir(cfg.Home)
	if keystore.Exists(dir) {
		c, err := Open(ctx, cfg) // finishes a pending registration
		if err != nil {
			return nil, err
		}
		if c.justRegistered && c.Handle() == h {
			return c, nil
		}
		c.Close()
		return nil, fmt.Errorf("%w: %s", ErrAccountExists, dir)
	}
	if len(cfg.Passphrase) == 0 {
		return nil, ErrNoPassphrase
	}
	probe := dial(cfg)
	st, err := probe.Status(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := probe.Lookup(ctx, h); err == nil {
		return nil, fmt.Errorf("%w: @%s", ErrHandleTaken, h)
	} else if !errors.Is(err, ErrUnknownHandle) {
		return nil, err
	}
	c, err := createLocal(cfg, h)
	if err != nil {
		return nil, err
	}
	if err := c.register(ctx, st.ChainId, st.PowDifficulty); err != nil {
		if retryable(err) && c.store.Put(bucketMeta, metaRegPending, []byte(h)) == nil {
			c.Close() // the keys stay: the registration may still commit
			return nil, fmt.Errorf("%w: @%s: %w", ErrRegistrationPending, h, err)
		}
		c.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	return c, c.afterRegistration(ctx)
}

// afterRegistration uploads the first one-time prekeys and makes the node
// one of the account's home nodes.
func (c *Client) afterRegistration(ctx context.Context) error {
	if err := c.replenishPrekeys(ctx, InitialPrekeys); err != nil {
		return fmt.Errorf("%w, but uploading prekeys failed (retried on next sync): %w", errAfterRegistration, err)
	}
	nodeID, err := c.connectedNode(ctx)
	if err == nil {
		err = c.ensureHome(ctx, nodeID)
	}
	if err != nil {
		return fmt.Errorf("%w, but setting its home node failed (retried on next sync): %w", errAfterRegistration, err)
	}
	return nil
}

// errAfterRegistration: the account is registered; a later step failed
// and is retried on the next sync.
var errAfterRegistration = errors.New("account registered")

// metaRegPending marks a home whose registration was sent but not seen on
// chain.
const metaRegPending = "registration_pending"

// finishRegistration completes a pending registration: done if the chain
// has the handle with this home's account key, sent again (the same
// transaction) if it has no such handle.
func (c *Client) finishRegistration(ctx context.Context) error {
	pub := c.secrets.AccountKey.Public().(ed25519.PublicKey)
	mine := func() (bool, error) {
		acct, err := c.Lookup(ctx, c.Handle())
		if errors.Is(err, ErrUnknownHandle) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !bytes.Equal(acct.AccountKey, pub) {
			return false, fmt.Errorf("%w: @%s was registered with another key while this home's registration waited; remove %s and choose another handle", ErrHandleTaken, c.Handle(), Dir(c.cfg.Home))
		}
		return true, nil
	}
	pending := func(err error) error {
		if errors.Is(err, ErrHandleTaken) {
			return err
		}
		return fmt.Errorf("%w: @%s: %w", ErrRegistrationPending, c.Handle(), err)
	}
	done, err := mine()
	if err != nil {
		return pending(err)
	}
	if !done {
		st, err := c.Status(ctx)
		if err != nil {
			return pending(err)
		}
		if rerr := c.register(ctx, st.ChainId, st.PowDifficulty); rerr != nil {
			if errors.Is(rerr, ledger.ErrBadSequence) { // the node has this very transaction already
				rerr = errors.New("it waits in the node's mempool for a block")
			}
			// The first one may have committed meanwhile.
			if done, err = mine(); err != nil || !done {
				return pending(cmp.Or(err, rerr))
			}
		}
	}
	if err := c.store.Delete(bucketMeta, metaRegPending); err != nil {
		return err
	}
	c.justRegistered = true
	return c.afterRegistration(ctx)
}

// createLocal writes the keystore and the Signal stores.
func createLocal(cfg Config, handle string) (*Client, error) {
	dir := Dir(cfg.Home)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	unlock, err := keystore.Lock(dir)
	if err != nil {
		return nil, err
	}
	s, err := keystore.Generate(handle)
	if err != nil {
		unlock()
		return nil, err
	}
	if err := keystore.Create(dir, s, cfg.Passphrase, keystore.Options{WorkFactor: cfg.KeystoreWorkFactor}); err != nil {
		unlock()
		return nil, err
	}
	c, err := open(cfg, s, unlock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// register generates the signed prekey and sends RegisterAccount.
func (c *Client) register(ctx context.Context, chainID string, difficulty uint32) error {
	if difficulty > ledger.MaxPowDifficulty {
		return fmt.Errorf("node asks for a proof of work of %d bits (cap %d)", difficulty, ledger.MaxPowDifficulty)
	}
	spk, err := c.firstSignedPrekey(ctx)
	if err != nil {
		return err
	}
	pub := c.secrets.AccountKey.Public().(ed25519.PublicKey)
	reg := &tokenimv1.RegisterAccount{
		Handle: c.Handle(), AccountKey: pub,
		IdentityKey:    c.secrets.IdentityKeyPair.PublicKey().Serialize(),
		RegistrationId: c.secrets.RegistrationID, SignedPrekey: spk,
		PowNonce: ledger.SolveWork(chainID, c.Handle(), pub, difficulty),
	}
	body := &tokenimv1.TxBody{ChainId: chainID, Signer: c.Handle(), Msg: &tokenimv1.TxBody_RegisterAccount{RegisterAccount: reg}}
	_, err = c.broadcast(ctx, body)
	return err
}

// firstSignedPrekey is the signed prekey a registration carries: the one
// stored by a registration sent before (a retry must carry the same, or the
// chain's record and this home's would differ), else a new one.
func (c *Client) firstSignedPrekey(ctx context.Context) (*tokenimv1.SignedPrekey, error) {
	if ok, err := c.store.ContainsSignedPreKey(ctx, signedPrekeyFirst); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return c.newSignedPrekey(ctx, signedPrekeyFirst)
	}
	rec, err := c.store.LoadSignedPreKey(ctx, signedPrekeyFirst)
	if err != nil {
		return nil, err
	}
	// A loaded record's public key is not the stored one (libsignal
	// v0.2.1 rebuilds it from the first 32 bytes of its serialized form,
	// type byte included); derive it from the private key.
	priv := rec.KeyPair().PrivateKey().Serialize()
	sig := rec.Signature()
	return &tokenimv1.SignedPrekey{Id: signedPrekeyFirst, PublicKey: ecc.CreateKeyPair(priv[:]).PublicKey().Serialize(), Signature: sig[:]}, nil
}

// newSignedPrekey makes and stores a signed prekey, returning its public part.
func (c *Client) newSignedPrekey(ctx context.Context, id uint32) (*tokenimv1.SignedPrekey, error) {
	rec, err := keyhelper.GenerateSignedPreKey(c.secrets.IdentityKeyPair, id, c.store.Serializer().SignedPreKeyRecord)
	if err != nil {
		return nil, err
	}
	if err := c.store.StoreSignedPreKey(ctx, id, rec); err != nil {
		return nil, err
	}
	if err := c.store.Put(bucketMeta, metaSignedPrekey, binary.BigEndian.AppendUint32(nil, id)); err != nil {
		return nil, err
	}
	sig := rec.Signature()
	return &tokenimv1.SignedPrekey{Id: id, PublicKey: rec.KeyPair().PublicKey().Serialize(), Signature: sig[:]}, nil
}

// broadcast signs body with the account key and waits for its block.
func (c *Client) broadcast(ctx context.Context, body *tokenimv1.TxBody) (int64, error) {
	raw, err := ledger.SignTx(body, c.secrets.AccountKey)
	if err != nil {
		return 0, err
	}
	res, err := c.node.BroadcastTx(ctx, connect.NewRequest(&tokenimv1.BroadcastTxRequest{Tx: raw}))
	if err != nil {
		return 0, c.netErr("broadcast", err)
	}
	if res.Msg.Code != ledger.CodeOK {
		return 0, txError(res.Msg.Code, res.Msg.Log)
	}
	return res.Msg.Height, nil
}

// txError is the error of a refused transaction: its code's error, with
// the ledger's reason (which repeats that error's text first: said once).
func txError(code uint32, log string) error {
	base := ledger.CodeError(code)
	switch detail := strings.TrimPrefix(log, base.Error()); {
	case detail == "":
		return base
	case detail != log && strings.HasPrefix(detail, ": "):
		return fmt.Errorf("%w%s", base, detail)
	default:
		return fmt.Errorf("%w (%s)", base, log)
	}
}

// RotateSignedPrekey replaces the account's signed prekey on chain.
func (c *Client) RotateSignedPrekey(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	acct, err := c.Lookup(ctx, c.Handle())
	if err != nil {
		return err
	}
	spk, err := c.newSignedPrekey(ctx, acct.SignedPrekey.GetId()+1)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	body := &tokenimv1.TxBody{ChainId: st.ChainId, Signer: c.Handle(), Sequence: acct.Sequence,
		Msg: &tokenimv1.TxBody_RotateSignedPrekey{RotateSignedPrekey: &tokenimv1.RotateSignedPrekey{SignedPrekey: spk}}}
	_, err = c.broadcast(ctx, body)
	return err
}

// TopUpPrekeys uploads new one-time prekeys when the node holds fewer than
// half of InitialPrekeys (each bundle someone fetched used one up).
func (c *Client) TopUpPrekeys(ctx context.Context) error {
	res, err := call(ctx, c, "count prekeys", &tokenimv1.PrekeyCountRequest{}, c.relay.PrekeyCount)
	if err != nil {
		return err
	}
	if left := int(res.Count); left < InitialPrekeys/2 {
		return c.replenishPrekeys(ctx, InitialPrekeys-left)
	}
	return nil
}

// PrekeysOnNode is how many one-time prekeys the node holds for this account.
func (c *Client) PrekeysOnNode(ctx context.Context) (int, error) {
	res, err := call(ctx, c, "count prekeys", &tokenimv1.PrekeyCountRequest{}, c.relay.PrekeyCount)
	if err != nil {
		return 0, err
	}
	return int(res.Count), nil
}

// replenishPrekeys generates n one-time prekeys, stores them and uploads them.
func (c *Client) replenishPrekeys(ctx context.Context, n int) error {
	next := uint32(1)
	if b, ok, err := c.store.Get(bucketMeta, metaNextPrekey); err != nil {
		return err
	} else if ok && len(b) == 4 {
		next = binary.BigEndian.Uint32(b)
	}
	if next+uint32(n) > maxPrekeyID {
		next = 1 // ids are 24-bit; wrap (used ids were deleted long ago)
	}
	// GeneratePreKeys takes an inclusive id range, not a count.
	recs, err := keyhelper.GeneratePreKeys(int(next), int(next)+n-1, c.store.Serializer().PreKeyRecord)
	if err != nil {
		return err
	}
	up := make([]*tokenimv1.OneTimePrekey, 0, n)
	for _, r := range recs {
		if err := c.store.StorePreKey(ctx, r.ID().Value, r); err != nil {
			return err
		}
		up = append(up, &tokenimv1.OneTimePrekey{Id: r.ID().Value, PublicKey: r.KeyPair().PublicKey().Serialize()})
	}
	if len(recs) != n {
		return fmt.Errorf("generated %d prekeys, want %d", len(recs), n)
	}
	if err := c.store.Put(bucketMeta, metaNextPrekey, binary.BigEndian.AppendUint32(nil, next+uint32(n))); err != nil {
		return err
	}
	_, err = call(ctx, c, "upload prekeys", &tokenimv1.UploadPrekeysRequest{Prekeys: up}, c.relay.UploadPrekeys)
	return err
}
