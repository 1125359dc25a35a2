package signalstore

import "errors"

// Errors a caller can branch on with errors.Is.
var (
	// ErrWrongKey means the key given to Open is not the file's key.
	ErrWrongKey = errors.New("signalstore: wrong key")
	// ErrCorrupt means a stored value failed authentication or decoding.
	ErrCorrupt = errors.New("signalstore: corrupt value")
	// ErrIdentityMismatch means Open was given a local identity key pair
	// other than the one the store was created with.
	ErrIdentityMismatch = errors.New("signalstore: local identity differs from the store's")
	// ErrLocked means another process (or another Open in this one) has
	// the file open.
	ErrLocked = errors.New("signalstore: database in use")
	// ErrInvalid means an argument is nil, empty or too long.
	ErrInvalid = errors.New("signalstore: invalid argument")
)
