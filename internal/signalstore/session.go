package signalstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	grouprecord "go.mau.fi/libsignal/groups/state/record"
	groupstore "go.mau.fi/libsignal/groups/state/store"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/state/store"
)

// Store implements every store libsignal needs.
var (
	_ store.SignalProtocol = (*Store)(nil)
	_ groupstore.SenderKey = (*Store)(nil)
)

// LoadSession returns the session record for addr, or a fresh empty record
// (not yet stored) if there is none, as libsignal expects.
func (s *Store) LoadSession(_ context.Context, addr *protocol.SignalAddress) (*record.Session, error) {
	if addr == nil {
		return nil, fmt.Errorf("%w: nil address", ErrInvalid)
	}
	v, ok, err := s.getOne(bucketSession, s.addrKey(addr))
	if err != nil {
		return nil, err
	}
	if !ok {
		return record.NewSession(s.ser.Session, s.ser.State), nil
	}
	return decodeRecord(func() (*record.Session, error) {
		return record.NewSessionFromBytes(v, s.ser.Session, s.ser.State)
	})
}

// GetSubDeviceSessions returns the device ids other than 1 that have a
// session under name, in ascending order.
func (s *Store) GetSubDeviceSessions(_ context.Context, name string) ([]uint32, error) {
	prefix := s.blind("addr", name)
	var ids []uint32
	err := s.read(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketSession)).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) != len(prefix)+4 {
				return ErrCorrupt
			}
			if id := binary.BigEndian.Uint32(k[len(prefix):]); id != 1 {
				ids = append(ids, id)
			}
		}
		return nil
	})
	return ids, err
}

// StoreSession stores the session record for addr.
func (s *Store) StoreSession(_ context.Context, addr *protocol.SignalAddress, rec *record.Session) error {
	if addr == nil || rec == nil {
		return fmt.Errorf("%w: nil address or session record", ErrInvalid)
	}
	v, err := encodeRecord("session", rec.Serialize)
	if err != nil {
		return err
	}
	return s.putOne(bucketSession, s.addrKey(addr), v)
}

// ContainsSession reports whether a session record is stored for addr.
func (s *Store) ContainsSession(_ context.Context, addr *protocol.SignalAddress) (bool, error) {
	if addr == nil {
		return false, fmt.Errorf("%w: nil address", ErrInvalid)
	}
	return s.hasOne(bucketSession, s.addrKey(addr))
}

// DeleteSession deletes the session record for addr.
func (s *Store) DeleteSession(_ context.Context, addr *protocol.SignalAddress) error {
	if addr == nil {
		return fmt.Errorf("%w: nil address", ErrInvalid)
	}
	return s.delOne(bucketSession, s.addrKey(addr))
}

// DeleteAllSessions deletes every session record.
func (s *Store) DeleteAllSessions(_ context.Context) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte(bucketSession)); err != nil {
			return fmt.Errorf("signalstore: %w", err)
		}
		if _, err := tx.CreateBucket([]byte(bucketSession)); err != nil {
			return fmt.Errorf("signalstore: %w", err)
		}
		return nil
	})
}

// StoreSenderKey stores the sender key record of a (group, sender) pair.
func (s *Store) StoreSenderKey(_ context.Context, name *protocol.SenderKeyName, rec *grouprecord.SenderKey) error {
	if name == nil || name.Sender() == nil || rec == nil {
		return fmt.Errorf("%w: nil sender key name or record", ErrInvalid)
	}
	v, err := encodeRecord("sender key", rec.Serialize)
	if err != nil {
		return err
	}
	return s.putOne(bucketSenderKey, s.senderKeyKey(name), v)
}

// LoadSenderKey returns the sender key record of a (group, sender) pair, or
// an empty record if there is none (libsignal's group cipher does not check
// for nil).
func (s *Store) LoadSenderKey(_ context.Context, name *protocol.SenderKeyName) (*grouprecord.SenderKey, error) {
	if name == nil || name.Sender() == nil {
		return nil, fmt.Errorf("%w: nil sender key name", ErrInvalid)
	}
	v, ok, err := s.getOne(bucketSenderKey, s.senderKeyKey(name))
	if err != nil {
		return nil, err
	}
	if !ok {
		return grouprecord.NewSenderKey(s.ser.SenderKeyRecord, s.ser.SenderKeyState), nil
	}
	return decodeRecord(func() (*grouprecord.SenderKey, error) {
		return grouprecord.NewSenderKeyFromBytes(v, s.ser.SenderKeyRecord, s.ser.SenderKeyState)
	})
}

func (s *Store) senderKeyKey(name *protocol.SenderKeyName) []byte {
	sender := name.Sender()
	return binary.BigEndian.AppendUint32(s.blind("senderkey", name.GroupID(), sender.Name()), sender.DeviceID())
}
