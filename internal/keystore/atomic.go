package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeNew writes data to dir/name (mode 0600) so that a crash leaves either
// no file or the whole file, and an existing file is never replaced: the
// data goes to a fsynced temporary file that is then hard-linked to the
// final name (link fails if the name exists). Where the file system has no
// hard links it falls back to a rename after an existence check.
func writeNew(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := writeSync(tmp, data); err != nil {
		return err
	}
	final := filepath.Join(dir, name)
	if err := os.Link(tmpName, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		if _, statErr := os.Lstat(final); statErr == nil {
			return ErrExists
		}
		if err := os.Rename(tmpName, final); err != nil {
			return fmt.Errorf("keystore: %w", err)
		}
	}
	return syncDir(dir)
}

// writeSync writes data to f, fsyncs and closes it.
func writeSync(f *os.File, data []byte) error {
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("keystore: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("keystore: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keystore: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory so a new entry in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keystore: sync dir: %w", err)
	}
	return nil
}
