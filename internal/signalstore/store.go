package signalstore

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/serialize"
	"golang.org/x/crypto/chacha20poly1305"
)

// Bucket names. The client's buckets live under kvPrefix so they can never
// collide with these.
const (
	bucketMeta         = "meta"
	bucketIdentity     = "signal.identity"
	bucketPreKey       = "signal.prekey"
	bucketSignedPreKey = "signal.signedprekey"
	bucketSession      = "signal.session"
	bucketSenderKey    = "signal.senderkey"
	kvPrefix           = "kv."
)

var internalBuckets = []string{bucketIdentity, bucketPreKey, bucketSignedPreKey, bucketSession, bucketSenderKey}

// Keys in the meta bucket. The salt is stored in the clear; the others are
// sealed like every other value.
var (
	metaSalt     = []byte("salt")
	metaCheck    = []byte("check")
	metaIdentity = []byte("identity")
	checkValue   = []byte("tokenim signalstore v1")
)

const (
	saltLen     = 32
	openTimeout = time.Second
)

// Store is a persistent libsignal store backed by one bbolt file. It is safe
// for concurrent use, but see the package comment on cipher operations.
type Store struct {
	db       *bolt.DB
	aead     cipher.AEAD
	indexKey []byte
	local    *identity.KeyPair
	regID    uint32
	ser      *serialize.Serializer
	btx      *bolt.Tx // set on a store bound to a transaction (Tx.Signal)
}

// Open opens or creates the store at path (mode 0600). key is the local
// storage key; local and registrationID are the account's Signal identity,
// returned by GetIdentityKeyPair and GetLocalRegistrationID. It fails with
// ErrWrongKey if key is not the file's key, ErrIdentityMismatch if local is
// not the identity the file was created with, and ErrLocked if the file is
// already open.
func Open(path string, key [32]byte, local *identity.KeyPair, registrationID uint32) (*Store, error) {
	if local == nil || local.PublicKey() == nil || local.PrivateKey() == nil {
		return nil, fmt.Errorf("%w: nil local identity", ErrInvalid)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("signalstore: open: %w", err)
	}
	s := &Store{db: db, local: local, regID: registrationID, ser: serialize.NewProtoBufSerializer()}
	if err := db.Update(func(tx *bolt.Tx) error { return s.setup(tx, key) }); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// setup creates the buckets and meta values of a new file, or checks the key
// and identity of an existing one, and installs the derived keys in s.
func (s *Store) setup(tx *bolt.Tx, key [32]byte) error {
	meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
	if err != nil {
		return fmt.Errorf("signalstore: %w", err)
	}
	for _, name := range internalBuckets {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("signalstore: %w", err)
		}
	}
	salt := meta.Get(metaSalt)
	fresh := salt == nil
	if fresh {
		salt = make([]byte, saltLen)
		if _, err := rand.Read(salt); err != nil {
			return fmt.Errorf("signalstore: %w", err)
		}
	} else if len(salt) != saltLen {
		return ErrCorrupt
	}
	if err := s.deriveKeys(key, salt); err != nil {
		return err
	}
	localPub := s.local.PublicKey().Serialize()
	if fresh {
		return s.initMeta(meta, salt, localPub)
	}
	check, err := s.open(bucketMeta, metaCheck, meta.Get(metaCheck))
	if err != nil || !bytes.Equal(check, checkValue) {
		return ErrWrongKey
	}
	recorded, err := s.open(bucketMeta, metaIdentity, meta.Get(metaIdentity))
	if err != nil {
		return err
	}
	if !bytes.Equal(recorded, localPub) {
		return ErrIdentityMismatch
	}
	return nil
}

func (s *Store) initMeta(meta *bolt.Bucket, salt, localPub []byte) error {
	if err := meta.Put(metaSalt, salt); err != nil {
		return fmt.Errorf("signalstore: %w", err)
	}
	for _, kv := range [][2][]byte{{metaCheck, checkValue}, {metaIdentity, localPub}} {
		sealed, err := s.seal(bucketMeta, kv[0], kv[1])
		if err != nil {
			return err
		}
		if err := meta.Put(kv[0], sealed); err != nil {
			return fmt.Errorf("signalstore: %w", err)
		}
	}
	return nil
}

// deriveKeys derives the value key and the index key from the master key
// and the file's salt.
func (s *Store) deriveKeys(key [32]byte, salt []byte) error {
	valueKey, err := hkdf.Key(sha256.New, key[:], salt, "tokenim signalstore v1 value", chacha20poly1305.KeySize)
	if err != nil {
		return fmt.Errorf("signalstore: %w", err)
	}
	defer clear(valueKey)
	s.aead, err = chacha20poly1305.NewX(valueKey)
	if err != nil {
		return fmt.Errorf("signalstore: %w", err)
	}
	s.indexKey, err = hkdf.Key(sha256.New, key[:], salt, "tokenim signalstore v1 index", sha256.Size)
	if err != nil {
		return fmt.Errorf("signalstore: %w", err)
	}
	return nil
}

// Close closes the file. The Store must not be used afterwards.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("signalstore: close: %w", err)
	}
	return nil
}

// Serializer returns the libsignal serializer (protobuf messages, JSON
// records) the store uses; pass it to session.NewBuilder and
// groups.NewGroupSessionBuilder and use it to parse received messages.
func (s *Store) Serializer() *serialize.Serializer {
	return s.ser
}
