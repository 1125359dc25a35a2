package relay

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/cockroachdb/pebble"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// PutPrekeys stores one-time prekeys for account, replacing any with the
// same id, durably (Sync). If the account would then hold more than
// MaxPrekeysPerAccount, it returns ErrTooManyPrekeys and stores none.
func (s *Store) PutPrekeys(account string, keys []*tokenimv1.OneTimePrekey) error {
	if err := checkName(account); err != nil {
		return err
	}
	if len(keys) > MaxPrekeysPerAccount {
		return fmt.Errorf("%w: %d in one call (cap %d)", ErrTooManyPrekeys, len(keys), MaxPrekeysPerAccount)
	}
	for _, k := range keys {
		if k == nil || len(k.PublicKey) == 0 || len(k.PublicKey) > MaxPrekeyBytes {
			return fmt.Errorf("%w: want a public key of 1 to %d bytes", ErrInvalidPrekey, MaxPrekeyBytes)
		}
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.dbMu.RUnlock()
	mu := s.prekeyLock(account)
	mu.Lock()
	defer mu.Unlock()
	ids, err := s.prekeyIDs(account)
	if err != nil {
		return err
	}
	stored := len(ids)
	total := stored
	b := s.db.NewBatch()
	defer b.Close()
	for _, k := range keys {
		if !ids[k.Id] {
			ids[k.Id] = true
			total++
		}
		if err := b.Set(prekeyKey(account, k.Id), k.PublicKey, nil); err != nil {
			return fmt.Errorf("relay: put prekeys: %w", err)
		}
	}
	if total > MaxPrekeysPerAccount {
		return fmt.Errorf("%w: %d stored, %d would be (cap %d)", ErrTooManyPrekeys, stored, total, MaxPrekeysPerAccount)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("relay: put prekeys: %w", err)
	}
	return nil
}

// TakePrekey removes and returns account's lowest-id one-time prekey, or
// (nil, nil) if it has none. The removal is durable (Sync) before the key is
// returned, and concurrent callers never get the same key.
func (s *Store) TakePrekey(account string) (*tokenimv1.OneTimePrekey, error) {
	if err := checkName(account); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.dbMu.RUnlock()
	mu := s.prekeyLock(account)
	mu.Lock()
	defer mu.Unlock()
	p := prekeyPrefix(account)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("relay: take prekey: %w", err)
	}
	var key []byte
	var otk *tokenimv1.OneTimePrekey
	if it.First() {
		key = bytes.Clone(it.Key())
		otk = &tokenimv1.OneTimePrekey{Id: prekeyID(key), PublicKey: bytes.Clone(it.Value())}
	}
	if err := it.Close(); err != nil || otk == nil {
		return nil, wrapNil("relay: take prekey", err)
	}
	if err := s.db.Delete(key, pebble.Sync); err != nil {
		return nil, fmt.Errorf("relay: take prekey: %w", err)
	}
	return otk, nil
}

// PrekeyCount returns how many one-time prekeys account has left.
func (s *Store) PrekeyCount(account string) (int, error) {
	if err := checkName(account); err != nil {
		return 0, err
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.dbMu.RUnlock()
	ids, err := s.prekeyIDs(account)
	return len(ids), err
}

// prekeyIDs returns the ids of account's stored prekeys.
func (s *Store) prekeyIDs(account string) (map[uint32]bool, error) {
	p := prekeyPrefix(account)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("relay: prekeys: %w", err)
	}
	ids := make(map[uint32]bool)
	for it.First(); it.Valid(); it.Next() {
		ids[prekeyID(it.Key())] = true
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("relay: prekeys: %w", err)
	}
	return ids, nil
}

// prekeyLock returns the lock that serializes account's prekey writes.
func (s *Store) prekeyLock(account string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(account))
	return &s.prekeyMu[h.Sum32()%prekeyStripes]
}

// wrapNil wraps err with op, or returns nil.
func wrapNil(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
