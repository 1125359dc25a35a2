package ledger

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/proto"
)

// InitGenesis writes the genesis parameters, filling in defaults
// (replication_factor 0 becomes DefaultReplicationFactor).
func InitGenesis(kv KV, g *tokenimv1.GenesisState) error {
	p := &tokenimv1.Params{PowDifficulty: DefaultPowDifficulty}
	if g.GetParams() != nil {
		p = proto.Clone(g.GetParams()).(*tokenimv1.Params)
	}
	if p.PowDifficulty > MaxPowDifficulty {
		return fmt.Errorf("ledger: genesis pow_difficulty %d over cap %d", p.PowDifficulty, MaxPowDifficulty)
	}
	if p.ReplicationFactor == 0 {
		p.ReplicationFactor = DefaultReplicationFactor
	}
	if p.ReplicationFactor > MaxReplicationFactor {
		return fmt.Errorf("ledger: genesis replication_factor %d over cap %d", p.ReplicationFactor, MaxReplicationFactor)
	}
	return setProto(kv, keyParams, p)
}

// ReplicationFactor is the number of nodes each mailbox and file chunk
// lives on: p.replication_factor, or DefaultReplicationFactor if unset.
func ReplicationFactor(p *tokenimv1.Params) int {
	if p.GetReplicationFactor() == 0 {
		return DefaultReplicationFactor
	}
	return int(p.GetReplicationFactor())
}

// InitValidators writes the genesis validator set (from InitChain). Keys
// must be distinct 32-byte Ed25519 keys, powers 1 to MaxValidatorPower.
func InitValidators(kv KV, vals []*tokenimv1.Validator) error {
	set := &tokenimv1.ValidatorSet{}
	for _, v := range vals {
		if len(v.ValidatorKey) != ed25519.PublicKeySize {
			return fmt.Errorf("ledger: genesis validator key is %d bytes, want %d", len(v.ValidatorKey), ed25519.PublicKeySize)
		}
		if v.Power <= 0 || v.Power > MaxValidatorPower {
			return fmt.Errorf("ledger: genesis validator %X: power %d outside 1..%d", v.ValidatorKey, v.Power, int64(MaxValidatorPower))
		}
		set.Validators = append(set.Validators, &tokenimv1.Validator{ValidatorKey: bytes.Clone(v.ValidatorKey), Power: v.Power})
	}
	slices.SortFunc(set.Validators, func(a, b *tokenimv1.Validator) int { return bytes.Compare(a.ValidatorKey, b.ValidatorKey) })
	for i := 1; i < len(set.Validators); i++ {
		if bytes.Equal(set.Validators[i-1].ValidatorKey, set.Validators[i].ValidatorKey) {
			return fmt.Errorf("ledger: genesis validator %X listed twice", set.Validators[i].ValidatorKey)
		}
	}
	return setProto(kv, keyValidators, set)
}
