package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"google.golang.org/protobuf/proto"
)

// KV is the state the machine reads and writes: the IAVL working tree in a
// node, a map-backed fake in tests. Get returns nil for a missing key;
// Delete of a missing key is a no-op.
type KV interface {
	Get(key []byte) ([]byte, error)
	Set(key, value []byte) error
	Delete(key []byte) error
}

// Reader is the read-only half of KV.
type Reader interface {
	Get(key []byte) ([]byte, error)
}

// State key layout. Each module owns one prefix; keys are prefix || parts.
//
//	p/params                         Params
//	a/<handle>                       Account
//	h/<handle>/<n: 8 bytes BE>       KeyEvent n of the account's history
//	n/<node_id>                      NodeRecord (node_id: 40 lowercase hex)
//	n/index                          NodeIndex: every node id, ascending
//	v/set                            ValidatorSet
//	v/p/<id: 8 bytes BE>             open ValidatorProposal id
//	pol/<id>                         PolicyRecord (policies.go)
//	poln/<name>                      the policy id deployed under name (raw)
//	grp/<name>                       GroupRecord (groups.go)
//	ag/<handle>                      AccountGroups: the handle's groups
//	cp/<a>/<b>                       the policy id of a 1:1 conversation, a < b (raw)
//
// A value is stateVersion || canonical protobuf, so no value is empty,
// except the two raw-id indexes above.
const stateVersion = 0x01

var (
	keyParams     = []byte("p/params")
	keyNodeIndex  = []byte("n/index")
	keyValidators = []byte("v/set")
)

func nodeKey(id string) []byte { return []byte("n/" + id) }

func proposalKey(id uint64) []byte { return binary.BigEndian.AppendUint64([]byte("v/p/"), id) }

func accountKey(handle string) []byte { return []byte("a/" + handle) }

func historyKey(handle string, n uint64) []byte {
	k := []byte("h/" + handle + "/")
	return binary.BigEndian.AppendUint64(k, n)
}

// AccountStateKey is the state key of a handle's account (for proofs).
func AccountStateKey(handle string) []byte { return accountKey(handle) }

func getProto(r Reader, key []byte, m proto.Message) (bool, error) {
	b, err := r.Get(key)
	if err != nil {
		return false, fmt.Errorf("%w: read %q: %v", ErrInternal, key, err)
	}
	if b == nil {
		return false, nil
	}
	if len(b) == 0 || b[0] != stateVersion {
		return false, fmt.Errorf("%w: stored %q: unknown value format", ErrInternal, key)
	}
	if err := codec.Unmarshal(b[1:], m, 1<<20); err != nil {
		return false, fmt.Errorf("%w: stored %q: %v", ErrInternal, key, err)
	}
	return true, nil
}

func setProto(kv KV, key []byte, m proto.Message) error {
	b, err := codec.Marshal(m)
	if err != nil {
		return fmt.Errorf("%w: encode %q: %v", ErrInternal, key, err)
	}
	if err := kv.Set(key, append([]byte{stateVersion}, b...)); err != nil {
		return fmt.Errorf("%w: write %q: %v", ErrInternal, key, err)
	}
	return nil
}

// GetAccount reads an account by (normalized) handle; ErrUnknownAccount if absent.
func GetAccount(r Reader, handle string) (*tokenimv1.Account, error) {
	var a tokenimv1.Account
	ok, err := getProto(r, accountKey(handle), &a)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: @%s", ErrUnknownAccount, handle)
	}
	return &a, nil
}

// GetKeyHistory reads an account's key history, oldest first.
func GetKeyHistory(r Reader, handle string) ([]*tokenimv1.KeyEvent, error) {
	a, err := GetAccount(r, handle)
	if err != nil {
		return nil, err
	}
	out := make([]*tokenimv1.KeyEvent, 0, a.KeyEvents)
	for n := uint64(0); n < a.KeyEvents; n++ {
		var ev tokenimv1.KeyEvent
		ok, err := getProto(r, historyKey(handle, n), &ev)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: history %d of @%s missing", ErrInternal, n, handle)
		}
		out = append(out, &ev)
	}
	return out, nil
}

// GetParams reads the chain parameters.
func GetParams(r Reader) (*tokenimv1.Params, error) {
	var p tokenimv1.Params
	ok, err := getProto(r, keyParams, &p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("ledger: params missing (chain not initialized)")
	}
	return &p, nil
}

func deleteKey(kv KV, key []byte) error {
	if err := kv.Delete(key); err != nil {
		return fmt.Errorf("%w: delete %q: %v", ErrInternal, key, err)
	}
	return nil
}
