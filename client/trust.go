package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	cmtmath "github.com/cometbft/cometbft/libs/math"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"
	gogoproto "github.com/cosmos/gogoproto/proto"
	ics23 "github.com/cosmos/ics23/go"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/msgproof"
	"go.mau.fi/libsignal/protocol"
)

// Key transparency. The client keeps a trusted validator set (metaTrust):
// the chain's genesis validators on first use, then every set it verified.
// A header is accepted when its own validator set (matching the header's
// validators hash) signed it with more than 2/3 of its power, every present
// signature checked, and — if that set is not the trusted one — when the
// trusted set signed it with at least 1/3 of its power (CometBFT's skipping
// verification; with bisection over intermediate headers when the set
// changed too much). A header older than the trusted one that the trusted
// set cannot vouch for (a proof at a past height, after the set turned
// over) is bridged to forward from the genesis set, pinned at first use. A
// state proof is then an ICS23 proof against that header's app hash.

// ErrUnproven: the chain's answer could not be proven (a node that serves
// a forged or stale record, or a header the trusted validators did not
// sign).
var ErrUnproven = errors.New("not proven by the chain")

const metaTrust = "trust"

// trust is the client's trusted light-client state.
type trust struct {
	ChainID    string   `json:"chain_id"`
	Height     int64    `json:"height"` // 0: the genesis set
	Validators [][]byte `json:"validators"`
	// Genesis is the genesis set pinned at first use (absent in trust
	// stores from before it was kept): a header older than Height whose
	// set the trusted one no longer overlaps is bridged to from it.
	Genesis [][]byte `json:"genesis,omitempty"`
}

// Proven is what a state proof established.
type Proven struct {
	Height      int64  `json:"height"` // the header whose app hash proves it
	SignedPower int64  `json:"signed_power"`
	TotalPower  int64  `json:"total_power"`
	AppHash     []byte `json:"app_hash"`
}

// loadTrust returns the trusted state, pinning the node's genesis
// validators on first use.
func (c *Client) loadTrust(ctx context.Context) (*trust, *types.ValidatorSet, error) {
	var t trust
	if b, ok, err := c.store.Get(bucketMeta, metaTrust); err != nil {
		return nil, nil, err
	} else if ok {
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, nil, fmt.Errorf("trust store: %w", err)
		}
		vals, err := msgproof.ValidatorSet(t.Validators)
		return &t, vals, err
	}
	res, err := c.node.Genesis(ctx, connect.NewRequest(&tokenimv1.GenesisRequest{}))
	if err != nil {
		return nil, nil, c.netErr("genesis", err)
	}
	doc, err := types.GenesisDocFromJSON(res.Msg.GenesisJson)
	if err != nil {
		return nil, nil, fmt.Errorf("genesis: %w", err)
	}
	var list []*types.Validator
	for _, v := range doc.Validators {
		list = append(list, types.NewValidator(v.PubKey, v.Power))
	}
	vals := types.NewValidatorSet(list)
	if err := vals.ValidateBasic(); err != nil {
		return nil, nil, fmt.Errorf("genesis validators: %w", err)
	}
	t = trust{ChainID: doc.ChainID, Validators: msgproof.EncodeValidators(vals), Genesis: msgproof.EncodeValidators(vals)}
	return &t, vals, c.saveTrust(&t)
}

// advanceTrust moves the trusted header to height (with its validators)
// unless a check made meanwhile moved it further: proofs checked at the
// same time never move it back.
func (c *Client) advanceTrust(ctx context.Context, height int64, vals *types.ValidatorSet) error {
	c.trustMu.Lock()
	defer c.trustMu.Unlock()
	t, _, err := c.loadTrust(ctx)
	if err != nil || height <= t.Height {
		return err
	}
	t.Height, t.Validators = height, msgproof.EncodeValidators(vals)
	return c.saveTrust(t)
}

func (c *Client) saveTrust(t *trust) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return c.store.Put(bucketMeta, metaTrust, b)
}

// decodeLightBlock decodes a signed header and its validator set and checks
// that the set signed it (> 2/3, every present signature valid).
func decodeLightBlock(lb *tokenimv1.GetLightBlockResponse, chainID string) (*types.SignedHeader, *types.ValidatorSet, error) {
	var shp cmtproto.SignedHeader
	if err := gogoproto.Unmarshal(lb.GetSignedHeader(), &shp); err != nil {
		return nil, nil, fmt.Errorf("%w: header: %v", ErrUnproven, err)
	}
	if again, err := gogoproto.Marshal(&shp); err != nil || !bytes.Equal(again, lb.GetSignedHeader()) {
		return nil, nil, fmt.Errorf("%w: header is not canonically encoded", ErrUnproven)
	}
	sh, err := types.SignedHeaderFromProto(&shp)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: header: %v", ErrUnproven, err)
	}
	if err := sh.ValidateBasic(chainID); err != nil {
		return nil, nil, fmt.Errorf("%w: header: %v", ErrUnproven, err)
	}
	vals, err := msgproof.ValidatorSet(lb.GetValidators())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: validators: %v", ErrUnproven, err)
	}
	if !bytes.Equal(vals.Hash(), sh.ValidatorsHash) {
		return nil, nil, fmt.Errorf("%w: the validator set is not the header's", ErrUnproven)
	}
	if err := msgproof.VerifyCommit(chainID, vals, sh); err != nil {
		return nil, nil, fmt.Errorf("%w: commit of block %d: %v", ErrUnproven, sh.Height, err)
	}
	return sh, vals, nil
}

// maxBisection bounds the intermediate headers fetched to bridge validator
// set changes.
const maxBisection = 32

// verifyHeader accepts lb against the trusted state (see the comment at
// the top), moving the trust forward.
func (c *Client) verifyHeader(ctx context.Context, lb *tokenimv1.GetLightBlockResponse) (*types.SignedHeader, *types.ValidatorSet, error) {
	t, trusted, err := c.loadTrust(ctx)
	if err != nil {
		return nil, nil, err
	}
	sh, vals, err := decodeLightBlock(lb, t.ChainID)
	if err != nil {
		return nil, nil, err
	}
	fetches := 0
	var bridge func(trusted *types.ValidatorSet, from int64, sh *types.SignedHeader, vals *types.ValidatorSet) error
	bridge = func(trusted *types.ValidatorSet, from int64, sh *types.SignedHeader, vals *types.ValidatorSet) error {
		if bytes.Equal(trusted.Hash(), vals.Hash()) {
			return nil
		}
		err := trusted.VerifyCommitLightTrustingAllSignatures(t.ChainID, sh.Commit, cmtmath.Fraction{Numerator: 1, Denominator: 3})
		if err == nil {
			return nil
		}
		mid := from + (sh.Height-from)/2
		if mid <= from || mid >= sh.Height || fetches >= maxBisection {
			return fmt.Errorf("%w: block %d is not signed by enough of the trusted validators: %v", ErrUnproven, sh.Height, err)
		}
		fetches++
		res, ferr := c.node.GetLightBlock(ctx, connect.NewRequest(&tokenimv1.GetLightBlockRequest{Height: mid}))
		if ferr != nil {
			return c.netErr("light block", ferr)
		}
		msh, mvals, derr := decodeLightBlock(res.Msg, t.ChainID)
		if derr != nil {
			return derr
		}
		if err := bridge(trusted, from, msh, mvals); err != nil {
			return err
		}
		return bridge(mvals, mid, sh, vals)
	}
	err = bridge(trusted, t.Height, sh, vals)
	if err != nil && sh.Height < t.Height && len(t.Genesis) > 0 && !errors.Is(err, ErrNodeUnreachable) {
		// A header from before the trusted one, signed by validators the
		// trusted set no longer overlaps (a proof at a past height after
		// the set turned over): bridge to it forward from the genesis set.
		gen, gerr := msgproof.ValidatorSet(t.Genesis)
		if gerr != nil {
			return nil, nil, fmt.Errorf("trust store: genesis set: %w", gerr)
		}
		fetches = 0
		err = bridge(gen, 0, sh, vals)
	}
	if err != nil {
		return nil, nil, err
	}
	if sh.Height > t.Height {
		if err := c.advanceTrust(ctx, sh.Height, vals); err != nil {
			return nil, nil, err
		}
	}
	return sh, vals, nil
}

// ProveAccount returns handle's account as the chain records it, proven:
// an ICS23 proof against the app hash of a header the trusted validators
// signed. A handle the chain does not have is proven absent (ErrUnknownHandle).
func (c *Client) ProveAccount(ctx context.Context, handle string) (*tokenimv1.Account, *Proven, error) {
	return c.ProveAccountAt(ctx, handle, 0)
}

// ProveAccountAt is ProveAccount as block height left the state (0: the
// latest): which keys the account had then.
func (c *Client) ProveAccountAt(ctx context.Context, handle string, height int64) (*tokenimv1.Account, *Proven, error) {
	h, err := ledger.NormalizeHandle(handle)
	if err != nil {
		return nil, nil, err
	}
	res, floor, err := c.stateProof(ctx, "account/"+h, height)
	if err != nil {
		return nil, nil, err
	}
	return c.checkAccountProofAt(ctx, h, height, res, floor)
}

// CheckAccountProof checks a node's GetStateProof answer for handle h
// (ProveAccount without the network call; auditors use it on answers they
// kept).
func (c *Client) CheckAccountProof(ctx context.Context, h string, res *tokenimv1.GetStateProofResponse) (*tokenimv1.Account, *Proven, error) {
	return c.checkAccountProof(ctx, h, res)
}

func (c *Client) checkAccountProof(ctx context.Context, h string, res *tokenimv1.GetStateProofResponse) (*tokenimv1.Account, *Proven, error) {
	return c.checkAccountProofAt(ctx, h, 0, res, -1)
}

func (c *Client) checkAccountProofAt(ctx context.Context, h string, height int64, res *tokenimv1.GetStateProofResponse, floor int64) (*tokenimv1.Account, *Proven, error) {
	value, pr, err := c.checkStateProof(ctx, "@"+h, ledger.AccountStateKey(h), height, res, floor)
	if err != nil {
		return nil, nil, err
	}
	if value == nil {
		return nil, pr, fmt.Errorf("%w: @%s (proven absent at block %d)", ErrUnknownHandle, h, pr.Height)
	}
	acct, err := ledger.DecodeAccountValue(value)
	if err != nil || acct.Handle != h {
		return nil, nil, fmt.Errorf("%w: the record of @%s does not decode as it", ErrUnproven, h)
	}
	return acct, pr, nil
}

// ProveGroup returns a group's record as the chain proves it: at height 0
// the latest, else as block height left it (who was a member then, with
// which roles, in which epoch). A group the state does not have is proven
// absent (ErrUnknownGroup).
func (c *Client) ProveGroup(ctx context.Context, name string, height int64) (*tokenimv1.GroupRecord, *Proven, error) {
	if err := ledger.CheckGroupName(name); err != nil {
		return nil, nil, err
	}
	res, floor, err := c.stateProof(ctx, "group/"+name, height)
	if err != nil {
		return nil, nil, err
	}
	return c.checkGroupProof(ctx, name, height, res, floor)
}

// stateProof asks the node for a GetStateProof answer (what: kind/name;
// height 0: the latest state), to be checked by the caller, and returns
// the newest block this client had verified when it asked: an answer to
// "the latest" must not be older (one verified meanwhile, by a request
// made at the same time, does not count against it).
func (c *Client) stateProof(ctx context.Context, what string, height int64) (*tokenimv1.GetStateProofResponse, int64, error) {
	if height < 0 {
		return nil, 0, fmt.Errorf("height %d: want 0 (the latest) or a block height", height)
	}
	floor, err := c.trustedHeight()
	if err != nil {
		return nil, 0, err
	}
	res, err := c.node.GetStateProof(ctx, connect.NewRequest(&tokenimv1.GetStateProofRequest{What: what, Height: height}))
	if err != nil {
		return nil, 0, c.netErr("prove "+what, err)
	}
	return res.Msg, floor, nil
}

// trustedHeight is the newest block this client has verified (0 before
// any), read without building the trusted validator set.
func (c *Client) trustedHeight() (int64, error) {
	b, ok, err := c.store.Get(bucketMeta, metaTrust)
	if err != nil || !ok {
		return 0, err
	}
	var t struct {
		Height int64 `json:"height"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return 0, fmt.Errorf("trust store: %w", err)
	}
	return t.Height, nil
}

// CheckGroupProof checks a node's GetStateProof answer for group name at
// height (ProveGroup without the network call; auditors use it on answers
// they kept).
func (c *Client) CheckGroupProof(ctx context.Context, name string, height int64, res *tokenimv1.GetStateProofResponse) (*tokenimv1.GroupRecord, *Proven, error) {
	return c.checkGroupProof(ctx, name, height, res, -1)
}

func (c *Client) checkGroupProof(ctx context.Context, name string, height int64, res *tokenimv1.GetStateProofResponse, floor int64) (*tokenimv1.GroupRecord, *Proven, error) {
	value, pr, err := c.checkStateProof(ctx, "group "+name, ledger.GroupStateKey(name), height, res, floor)
	if err != nil {
		return nil, nil, err
	}
	if value == nil {
		return nil, pr, fmt.Errorf("%w: %q (proven absent at block %d)", ErrUnknownGroup, name, pr.Height)
	}
	g, err := ledger.DecodeGroupValue(value)
	if err != nil || g.Name != name {
		return nil, nil, fmt.Errorf("%w: the record of group %s does not decode as it", ErrUnproven, name)
	}
	return g, pr, nil
}

// checkStateProof checks a node's GetStateProof answer for key: the header
// against the trusted validators, the ICS23 proof against its app hash.
// At height 0 the header must not be older than floor, the newest block
// this client had verified when it asked (a node cannot serve stale
// state; floor < 0: the newest it has verified now); at a height it must
// be block height+1, whose app hash is the root of the state block height
// left. value is nil when the key is proven absent.
func (c *Client) checkStateProof(ctx context.Context, what string, key []byte, height int64, res *tokenimv1.GetStateProofResponse, floor int64) ([]byte, *Proven, error) {
	t, _, err := c.loadTrust(ctx)
	if err != nil {
		return nil, nil, err
	}
	sh, vals, err := c.verifyHeader(ctx, res.LightBlock)
	if err != nil {
		return nil, nil, err
	}
	if floor < 0 {
		floor = t.Height
	}
	switch {
	case height == 0 && sh.Height < floor:
		return nil, nil, fmt.Errorf("%w: the node proved %s at block %d, older than block %d this client already verified", ErrUnproven, what, sh.Height, floor)
	case height > 0 && sh.Height != height+1:
		return nil, nil, fmt.Errorf("%w: asked for %s at block %d, the node proved it against block %d (want %d)", ErrUnproven, what, height, sh.Height, height+1)
	}
	var p ics23.CommitmentProof
	if err := p.Unmarshal(res.Proof); err != nil {
		return nil, nil, fmt.Errorf("%w: state proof: %v", ErrUnproven, err)
	}
	if again, err := p.Marshal(); err != nil || !bytes.Equal(again, res.Proof) {
		return nil, nil, fmt.Errorf("%w: state proof is not canonically encoded", ErrUnproven)
	}
	pr := &Proven{Height: sh.Height, SignedPower: msgproof.SignedPower(vals, sh.Commit), TotalPower: vals.TotalVotingPower(), AppHash: sh.AppHash}
	if len(res.Value) == 0 {
		if !ics23.VerifyNonMembership(ics23.IavlSpec, []byte(sh.AppHash), &p, key) {
			return nil, nil, fmt.Errorf("%w: absence of %s", ErrUnproven, what)
		}
		return nil, pr, nil
	}
	if !ics23.VerifyMembership(ics23.IavlSpec, []byte(sh.AppHash), &p, key, res.Value) {
		return nil, nil, fmt.Errorf("%w: the record of %s", ErrUnproven, what)
	}
	return res.Value, pr, nil
}

// ContactStatus is a contact's identity key as the chain proves it, and how
// it compares with the key this client pinned at first contact.
type ContactStatus struct {
	Account     *tokenimv1.Account
	Proven      *Proven
	Fingerprint string
	// Pinned is the fingerprint pinned at first contact ("" if none yet).
	Pinned string
	// Changed: the proven key is not the pinned one. Messages to and from
	// the contact are refused until the user accepts the new key
	// (AcceptKeyChange) after checking it with the contact.
	Changed bool
}

// CheckContact proves handle's account and compares its identity key with
// the pinned one (pinning it on first contact).
func (c *Client) CheckContact(ctx context.Context, handle string) (*ContactStatus, error) {
	acct, pr, err := c.ProveAccount(ctx, handle)
	if err != nil {
		return nil, err
	}
	st := &ContactStatus{Account: acct, Proven: pr, Fingerprint: Fingerprint(acct.IdentityKey)}
	pinned, ok, err := c.store.Get(bucketContacts, acct.Handle)
	if err != nil {
		return nil, err
	}
	if !ok {
		return st, c.store.Put(bucketContacts, acct.Handle, acct.IdentityKey)
	}
	st.Pinned = Fingerprint(pinned)
	st.Changed = !bytes.Equal(pinned, acct.IdentityKey)
	return st, nil
}

// AcceptKeyChange pins handle's proven identity key in place of the old one
// (after the user compared fingerprints with the contact) and drops the old
// Signal session.
func (c *Client) AcceptKeyChange(ctx context.Context, handle string) error {
	acct, _, err := c.ProveAccount(ctx, handle)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.store.DeleteSession(ctx, protocol.NewSignalAddress(acct.Handle, DeviceID)); err != nil {
		return err
	}
	if err := c.store.Put(bucketContacts, acct.Handle, acct.IdentityKey); err != nil {
		return err
	}
	c.proven.Store(acct.Handle, provenKey{acct: acct, at: time.Now()})
	return nil
}

// PinKey pins identityKey for handle — a key the user verified out of band
// (compared in person, scanned from the contact's device). If the chain
// proves another key, CheckContact reports Changed and the client refuses
// to use it until AcceptKeyChange.
func (c *Client) PinKey(handle string, identityKey []byte) error {
	h, err := ledger.NormalizeHandle(handle)
	if err != nil {
		return err
	}
	c.proven.Delete(h) // the next use proves the chain's key against this pin
	return c.store.Put(bucketContacts, h, identityKey)
}
