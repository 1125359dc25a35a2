package signalstore

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Limits of the key/value helpers.
const (
	MaxBucketLen = 255
	MaxKeyLen    = 1024
	MaxValueLen  = 16 << 20
)

// Tx is a read-write transaction over the client's buckets, passed to
// Update. It is valid only inside the callback.
type Tx struct {
	s  *Store
	tx *bolt.Tx
}

// Update runs fn in one read-write transaction: all of its Puts and
// Deletes are committed together, or none if fn returns an error.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.update(func(btx *bolt.Tx) error { return fn(&Tx{s: s, tx: btx}) })
}

func (s *Store) view(fn func(tx *Tx) error) error {
	return s.read(func(btx *bolt.Tx) error { return fn(&Tx{s: s, tx: btx}) })
}

// Signal returns the store bound to this transaction: what libsignal
// writes through it (session, identity, sender key, prekey records) is
// committed with the transaction's other writes, in one commit, and what
// it reads sees them. Use it only inside the Update callback, on its
// goroutine.
func (t *Tx) Signal() *Store {
	bound := *t.s
	bound.btx = t.tx
	return &bound
}

// update and read run fn in a transaction of their own, or in the one the
// store is bound to (Tx.Signal).
func (s *Store) update(fn func(*bolt.Tx) error) error {
	if s.btx != nil {
		return fn(s.btx)
	}
	return s.db.Update(fn)
}

func (s *Store) read(fn func(*bolt.Tx) error) error {
	if s.btx != nil {
		return fn(s.btx)
	}
	return s.db.View(fn)
}

// Put stores value under bucket/key, replacing any previous value.
func (s *Store) Put(bucket, key string, value []byte) error {
	return s.Update(func(tx *Tx) error { return tx.Put(bucket, key, value) })
}

// Get returns the value under bucket/key and whether there is one.
func (s *Store) Get(bucket, key string) (value []byte, ok bool, err error) {
	err = s.view(func(tx *Tx) error {
		value, ok, err = tx.Get(bucket, key)
		return err
	})
	return value, ok, err
}

// ForEach calls fn for every key of bucket in byte order of the keys,
// stopping at the first error, which it returns. A missing bucket is empty.
func (s *Store) ForEach(bucket string, fn func(key string, value []byte) error) error {
	return s.view(func(tx *Tx) error { return tx.ForEach(bucket, fn) })
}

// Delete removes bucket/key; deleting a missing key is not an error.
func (s *Store) Delete(bucket, key string) error {
	return s.Update(func(tx *Tx) error { return tx.Delete(bucket, key) })
}

// Put stores value under bucket/key within the transaction.
func (t *Tx) Put(bucket, key string, value []byte) error {
	if err := checkArgs(bucket, key); err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("%w: value longer than %d bytes", ErrInvalid, MaxValueLen)
	}
	return t.s.put(t.tx, kvPrefix+bucket, []byte(key), value)
}

// Get returns the value under bucket/key within the transaction.
func (t *Tx) Get(bucket, key string) ([]byte, bool, error) {
	if err := checkArgs(bucket, key); err != nil {
		return nil, false, err
	}
	return t.s.get(t.tx, kvPrefix+bucket, []byte(key))
}

// Delete removes bucket/key within the transaction.
func (t *Tx) Delete(bucket, key string) error {
	if err := checkArgs(bucket, key); err != nil {
		return err
	}
	return t.s.del(t.tx, kvPrefix+bucket, []byte(key))
}

// ForEach is Store.ForEach within the transaction. fn must not write to the
// same bucket.
func (t *Tx) ForEach(bucket string, fn func(key string, value []byte) error) error {
	if err := checkArgs(bucket, "-"); err != nil {
		return err
	}
	name := kvPrefix + bucket
	b := t.tx.Bucket([]byte(name))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil
		}
		plain, err := t.s.open(name, k, v)
		if err != nil {
			return err
		}
		return fn(string(k), plain)
	})
}

func checkArgs(bucket, key string) error {
	if bucket == "" || len(bucket) > MaxBucketLen {
		return fmt.Errorf("%w: bucket name must have 1..%d bytes", ErrInvalid, MaxBucketLen)
	}
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key must have 1..%d bytes", ErrInvalid, MaxKeyLen)
	}
	return nil
}

// put seals value and stores it, creating the bucket if needed.
func (s *Store) put(tx *bolt.Tx, bucket string, key, value []byte) error {
	b, err := tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("signalstore: %w", err)
	}
	sealed, err := s.seal(bucket, key, value)
	if err != nil {
		return err
	}
	if err := b.Put(key, sealed); err != nil {
		return fmt.Errorf("signalstore: %w", err)
	}
	return nil
}

// get returns the opened value under key, or ok == false if there is none.
func (s *Store) get(tx *bolt.Tx, bucket string, key []byte) ([]byte, bool, error) {
	b := tx.Bucket([]byte(bucket))
	if b == nil {
		return nil, false, nil
	}
	v := b.Get(key)
	if v == nil {
		return nil, false, nil
	}
	plain, err := s.open(bucket, key, v)
	if err != nil {
		return nil, false, err
	}
	return plain, true, nil
}

func (s *Store) has(tx *bolt.Tx, bucket string, key []byte) bool {
	b := tx.Bucket([]byte(bucket))
	return b != nil && b.Get(key) != nil
}

func (s *Store) del(tx *bolt.Tx, bucket string, key []byte) error {
	b := tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	if err := b.Delete(key); err != nil {
		return fmt.Errorf("signalstore: %w", err)
	}
	return nil
}

// Helpers for the libsignal stores: one transaction per call.

func (s *Store) putOne(bucket string, key, value []byte) error {
	return s.update(func(tx *bolt.Tx) error { return s.put(tx, bucket, key, value) })
}

func (s *Store) getOne(bucket string, key []byte) (value []byte, ok bool, err error) {
	err = s.read(func(tx *bolt.Tx) error {
		value, ok, err = s.get(tx, bucket, key)
		return err
	})
	return value, ok, err
}

func (s *Store) hasOne(bucket string, key []byte) (ok bool, err error) {
	err = s.read(func(tx *bolt.Tx) error {
		ok = s.has(tx, bucket, key)
		return nil
	})
	return ok, err
}

func (s *Store) delOne(bucket string, key []byte) error {
	return s.update(func(tx *bolt.Tx) error { return s.del(tx, bucket, key) })
}
