package signalstore

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"go.mau.fi/libsignal/state/record"
)

func idKey(id uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, id)
}

// LoadPreKey returns the one-time prekey with the given id, or nil (and no
// error) if there is none, as libsignal expects.
func (s *Store) LoadPreKey(_ context.Context, preKeyID uint32) (*record.PreKey, error) {
	v, ok, err := s.getOne(bucketPreKey, idKey(preKeyID))
	if err != nil || !ok {
		return nil, err
	}
	return decodeRecord(func() (*record.PreKey, error) {
		return record.NewPreKeyFromBytes(v, s.ser.PreKeyRecord)
	})
}

// StorePreKey stores a one-time prekey under preKeyID.
func (s *Store) StorePreKey(_ context.Context, preKeyID uint32, preKeyRecord *record.PreKey) error {
	if preKeyRecord == nil {
		return fmt.Errorf("%w: nil prekey record", ErrInvalid)
	}
	v, err := encodeRecord("prekey", preKeyRecord.Serialize)
	if err != nil {
		return err
	}
	return s.putOne(bucketPreKey, idKey(preKeyID), v)
}

// ContainsPreKey reports whether a one-time prekey with the id is stored.
func (s *Store) ContainsPreKey(_ context.Context, preKeyID uint32) (bool, error) {
	return s.hasOne(bucketPreKey, idKey(preKeyID))
}

// RemovePreKey deletes a one-time prekey; libsignal calls it once the
// prekey has been used to build a session.
func (s *Store) RemovePreKey(_ context.Context, preKeyID uint32) error {
	return s.delOne(bucketPreKey, idKey(preKeyID))
}

// LoadSignedPreKey returns the signed prekey with the id, or nil (and no
// error) if there is none.
func (s *Store) LoadSignedPreKey(_ context.Context, signedPreKeyID uint32) (*record.SignedPreKey, error) {
	v, ok, err := s.getOne(bucketSignedPreKey, idKey(signedPreKeyID))
	if err != nil || !ok {
		return nil, err
	}
	return decodeRecord(func() (*record.SignedPreKey, error) {
		return record.NewSignedPreKeyFromBytes(v, s.ser.SignedPreKeyRecord)
	})
}

// LoadSignedPreKeys returns every signed prekey in id order.
func (s *Store) LoadSignedPreKeys(_ context.Context) ([]*record.SignedPreKey, error) {
	var out []*record.SignedPreKey
	err := s.read(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketSignedPreKey)).ForEach(func(k, v []byte) error {
			plain, err := s.open(bucketSignedPreKey, k, v)
			if err != nil {
				return err
			}
			rec, err := decodeRecord(func() (*record.SignedPreKey, error) {
				return record.NewSignedPreKeyFromBytes(plain, s.ser.SignedPreKeyRecord)
			})
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

// StoreSignedPreKey stores a signed prekey under signedPreKeyID.
func (s *Store) StoreSignedPreKey(_ context.Context, signedPreKeyID uint32, rec *record.SignedPreKey) error {
	if rec == nil {
		return fmt.Errorf("%w: nil signed prekey record", ErrInvalid)
	}
	v, err := encodeRecord("signed prekey", rec.Serialize)
	if err != nil {
		return err
	}
	return s.putOne(bucketSignedPreKey, idKey(signedPreKeyID), v)
}

// ContainsSignedPreKey reports whether a signed prekey with the id is stored.
func (s *Store) ContainsSignedPreKey(_ context.Context, signedPreKeyID uint32) (bool, error) {
	return s.hasOne(bucketSignedPreKey, idKey(signedPreKeyID))
}

// RemoveSignedPreKey deletes a signed prekey.
func (s *Store) RemoveSignedPreKey(_ context.Context, signedPreKeyID uint32) error {
	return s.delOne(bucketSignedPreKey, idKey(signedPreKeyID))
}
