//go:build unix

package keystore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// LockFileName is the lock file's name inside the account directory.
const LockFileName = "lock"

// Lock takes an exclusive advisory lock (flock LOCK_EX|LOCK_NB) on
// <dir>/lock, creating dir (0700) and the file (0600) if needed. It returns
// ErrLocked at once if the lock is held, by another process or by another
// open of the file in this one. The returned unlock releases the lock and
// closes the file; calling it again does nothing. The lock also goes away
// when the process exits.
func Lock(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keystore: lock: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, LockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keystore: lock: %w", err)
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("keystore: lock: %w", err)
	}
	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() {
			uerr = flock(f, syscall.LOCK_UN)
			if cerr := f.Close(); uerr == nil {
				uerr = cerr
			}
		})
		return uerr
	}, nil
}

// flock retries on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}
