//go:build !unix

package keystore

import "errors"

// LockFileName is the lock file's name inside the account directory.
const LockFileName = "lock"

// Lock is not supported on this platform.
func Lock(dir string) (unlock func() error, err error) {
	return nil, errors.New("keystore: lock: not supported on this platform")
}
