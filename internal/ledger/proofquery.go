package ledger

import (
	"errors"
	"fmt"

	ics23 "github.com/cosmos/ics23/go"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// ErrNoState: nothing is committed yet.
var ErrNoState = errors.New("ledger: no committed state yet")

// ProveKey returns the committed value of key (nil if absent) with an ICS23
// proof — membership, or non-membership when absent — against the root of
// the latest committed version, that root and the version. The root is the
// app hash in the header of block version+1 (and of block version too when
// that block changed nothing).
func (a *App) ProveKey(key []byte) (value []byte, proof *ics23.CommitmentProof, root []byte, version int64, err error) {
	a.mu.RLock()
	imm := a.committed
	a.mu.RUnlock()
	if imm == nil {
		return nil, nil, nil, 0, ErrNoState
	}
	a.stateMu.RLock()
	defer a.stateMu.RUnlock()
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

// DecodeAccountValue decodes an account's state value (strictly).
func DecodeAccountValue(v []byte) (*tokenimv1.Account, error) {
	var acct tokenimv1.Account
	ok, err := getProto(memKV{"k": v}, []byte("k"), &acct)
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: account value: %v", ErrDecode, err)
	}
	return &acct, nil
}
