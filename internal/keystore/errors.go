package keystore

import "errors"

// Errors a caller can branch on with errors.Is.
var (
	// ErrNotFound means the directory holds no keystore file.
	ErrNotFound = errors.New("keystore: not found")
	// ErrExists means Create found a keystore file already in place.
	ErrExists = errors.New("keystore: already exists")
	// ErrWrongPassphrase means the passphrase does not open the keystore.
	ErrWrongPassphrase = errors.New("keystore: wrong passphrase")
	// ErrEmptyPassphrase means the passphrase has no bytes.
	ErrEmptyPassphrase = errors.New("keystore: empty passphrase")
	// ErrCorrupt means the file is damaged or not a keystore.
	ErrCorrupt = errors.New("keystore: corrupt file")
	// ErrInvalid means Secrets or Options passed in are malformed.
	ErrInvalid = errors.New("keystore: invalid secrets or options")
	// ErrLocked means another open file description holds the lock.
	ErrLocked = errors.New("keystore: locked by another process")
)
