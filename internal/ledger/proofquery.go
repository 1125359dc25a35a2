package ledger

import (
	"errors"
	"fmt"

	ics23 "github.com/cosmos/ics23/go"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/proto"
)

// ErrNoState: nothing is committed yet.
var ErrNoState = errors.New("ledger: no committed state yet")

// ProveKey returns the committed value of key (nil if absent) with an ICS23
// proof — membership, or non-membership when absent — against the root of
// the latest committed version, that root and the version. The root is the
// app hash in the header of block version+1 (and of block version too when
// that block changed nothing).
func (a *App) ProveKey(key []byte) (value []byte, proof *ics23.CommitmentProof, root []byte, version int64, err error) {
	return a.ProveKeyAt(key, 0)
}

// ErrNoVersion: the state version asked for is not committed (yet).
var ErrNoVersion = errors.New("ledger: no such state version")

// ErrVersionGone: the state version asked for is older than this node
// keeps (it joined from a snapshot, or pruned).
var ErrVersionGone = errors.New("ledger: state version not kept here")

// ProveKeyAt is ProveKey against the state as block version left it (0:
// the latest committed). Every version is kept, so a past state stays
// provable.
func (a *App) ProveKeyAt(key []byte, version int64) (value []byte, proof *ics23.CommitmentProof, root []byte, v int64, err error) {
	a.mu.RLock()
	imm := a.committed
	a.mu.RUnlock()
	if imm == nil {
		return nil, nil, nil, 0, ErrNoState
	}
	a.stateMu.RLock()
	defer a.stateMu.RUnlock()
	if version < 0 || version > imm.Version() {
		return nil, nil, nil, 0, fmt.Errorf("%w: %d (latest %d)", ErrNoVersion, version, imm.Version())
	}
	if version > 0 && version != imm.Version() {
		if imm, err = a.tree.GetImmutable(version); err != nil {
			return nil, nil, nil, 0, fmt.Errorf("%w: %d: %v", ErrVersionGone, version, err)
		}
	}
	if value, err = imm.Get(key); err != nil {
		return nil, nil, nil, 0, fmt.Errorf("ledger: prove: %w", err)
	}
	if value != nil {
		proof, err = imm.GetMembershipProof(key)
	} else {
		proof, err = imm.GetNonMembershipProof(key)
	}
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("ledger: prove: %w", err)
	}
	return value, proof, imm.Hash(), imm.Version(), nil
}

// DecodeGroupValue decodes a group's state value (strictly).
func DecodeGroupValue(v []byte) (*tokenimv1.GroupRecord, error) {
	var g tokenimv1.GroupRecord
	if err := decodeValue(v, &g, "group"); err != nil {
		return nil, err
	}
	return &g, nil
}

// DecodeAccountGroupsValue decodes the state value of the groups an
// account belongs to (strictly).
func DecodeAccountGroupsValue(v []byte) ([]string, error) {
	var ag tokenimv1.AccountGroups
	if err := decodeValue(v, &ag, "account groups"); err != nil {
		return nil, err
	}
	return ag.Groups, nil
}

// DecodeAccountValue decodes an account's state value (strictly).
func DecodeAccountValue(v []byte) (*tokenimv1.Account, error) {
	var acct tokenimv1.Account
	if err := decodeValue(v, &acct, "account"); err != nil {
		return nil, err
	}
	return &acct, nil
}

// decodeValue decodes a state value into m (strictly).
func decodeValue(v []byte, m proto.Message, what string) error {
	ok, err := getProto(memKV{"k": v}, []byte("k"), m)
	if err != nil || !ok {
		return fmt.Errorf("%w: %s value: %v", ErrDecode, what, err)
	}
	return nil
}
