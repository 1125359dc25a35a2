package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/ledger"
	"github.com/tokenim/tokenim/internal/signalstore"
	"golang.org/x/crypto/chacha20poly1305"
)

// FileRef is what a message that shares a file says about it.
type FileRef struct {
	// Name is the sender's file name, made safe to show and to create.
	Name         string `json:"name"`
	Size         uint64 `json:"size"`
	ManifestHash string `json:"manifest_hash"`
}

var (
	// ErrFileTooLarge: over MaxFileSize.
	ErrFileTooLarge = errors.New("file too large")
	// ErrNoFile: the message id names no message that shares a file.
	ErrNoFile = errors.New("no file in that message")
)

// bucketFileKeys keeps each shared file's key, by message id, apart from
// the history (which `inbox --json` prints).
const bucketFileKeys = "filekeys"

// SendFile encrypts the file at path with a fresh key, uploads its chunks
// (skipping those the node reports it has) and the manifest, then sends
// the recipient the manifest hash and key end to end encrypted. progress
// (may be nil) sees plaintext bytes stored so far.
func (c *Client) SendFile(ctx context.Context, to, path string, progress func(done, total int64)) (*Message, error) {
	h, err := ledger.NormalizeHandle(to)
	if err != nil {
		return nil, err
	}
	body, err := c.uploadFile(ctx, "@"+h, path, progress)
	if err != nil {
		return nil, err
	}
	return c.sendContent(ctx, h, &tokenimv1.Content{Body: &tokenimv1.Content_File{File: body}}, fileText(body))
}

// SendGroupFile is SendFile to a group: the chunks are stored once, the
// key goes to every member inside one sender-key message.
func (c *Client) SendGroupFile(ctx context.Context, group, path string, progress func(done, total int64)) (*Message, error) {
	g, err := c.Group(ctx, group)
	if err != nil {
		return nil, err
	}
	if ledger.Role(g, c.Handle()) == "" {
		return nil, fmt.Errorf("%w: %s", ErrNotMember, group)
	}
	body, err := c.uploadFile(ctx, group, path, progress)
	if err != nil {
		return nil, err
	}
	return c.sendGroupContent(ctx, group, &tokenimv1.Content{Body: &tokenimv1.Content_File{File: body}}, fileText(body))
}

// uploadFile seals and uploads the file at path for conversation ("@handle"
// or a group: the nodes apply its retention to the chunks) and returns the
// File a message carries.
func (c *Client) uploadFile(ctx context.Context, conversation, path string, progress func(done, total int64)) (*tokenimv1.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrFileTooLarge, st.Size(), int64(MaxFileSize))
	}
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	up := &uploader{c: c, conversation: conversation, total: st.Size(), progress: progress}
	manifest, err := sealFile(f, st.Size(), key, func(sc sealedChunk) error {
		return up.add(ctx, sc, int64(len(sc.Data)-chacha20poly1305.Overhead))
	})
	if err != nil {
		return nil, err
	}
	manifest.Name = fileName(filepath.Base(path))
	mc, err := sealManifest(key, manifest)
	if err != nil {
		return nil, err
	}
	if err := up.add(ctx, mc, 0); err != nil {
		return nil, err
	}
	if err := up.flush(ctx); err != nil {
		return nil, err
	}
	return &tokenimv1.File{ManifestHash: mc.Hash, Key: key, Name: manifest.Name, Size: manifest.Size}, nil
}

func fileText(f *tokenimv1.File) string {
	return fmt.Sprintf("[file] %s (%d bytes)", fileName(f.Name), f.Size)
}

// uploader stores sealed chunks in batches of uploadBatch: one HasChunks
// call, then the missing chunks concurrently. A batch the node could not
// take (unreachable, or no replica quorum) is retried; HasChunks then
// skips what already arrived.
type uploader struct {
	c            *Client
	conversation string
	batch        []sealedChunk
	pending      int64 // plaintext bytes in batch
	done         int64
	total        int64
	progress     func(done, total int64)
}

func (u *uploader) add(ctx context.Context, sc sealedChunk, plaintext int64) error {
	u.batch = append(u.batch, sc)
	u.pending += plaintext
	if len(u.batch) < uploadBatch {
		return nil
	}
	return u.flush(ctx)
}

func (u *uploader) flush(ctx context.Context) error {
	if len(u.batch) == 0 {
		return nil
	}
	err := u.putMissing(ctx)
	for attempt := 1; attempt < 3 && errors.Is(err, ErrNodeUnreachable); attempt++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
		err = u.putMissing(ctx)
	}
	if err != nil {
		return err
	}
	u.done += u.pending
	u.batch, u.pending = u.batch[:0], 0
	if u.progress != nil {
		u.progress(u.done, u.total)
	}
	return nil
}

func (u *uploader) putMissing(ctx context.Context) error {
	hashes := make([][]byte, len(u.batch))
	for i, sc := range u.batch {
		hashes[i] = sc.Hash
	}
	has, err := call(ctx, u.c, "check chunks", &tokenimv1.HasChunksRequest{Hashes: hashes, Conversation: u.conversation}, u.c.blob.HasChunks)
	if err != nil {
		return err
	}
	if len(has.Present) != len(hashes) {
		return fmt.Errorf("check chunks: node answered for %d of %d chunks", len(has.Present), len(hashes))
	}
	errs := make([]error, len(u.batch))
	var wg sync.WaitGroup
	for i, sc := range u.batch {
		if has.Present[i] {
			continue
		}
		wg.Go(func() {
			_, errs[i] = call(ctx, u.c, "upload chunk", &tokenimv1.PutChunkRequest{Hash: sc.Hash, Data: sc.Data, Conversation: u.conversation}, u.c.blob.PutChunk)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// getChunk fetches a chunk's bytes from the node (which serves its own
// copy or a replica's, hash-checked); the caller checks the hash again.
func (c *Client) getChunk(ctx context.Context, hash []byte) ([]byte, error) {
	res, err := call(ctx, c, "download chunk", &tokenimv1.GetChunkRequest{Hash: hash}, c.blob.GetChunk)
	if connect.CodeOf(err) == connect.CodeNotFound {
		return nil, fmt.Errorf("%w: chunk %x is on no reachable replica, or only corrupt copies are", ErrFileCorrupt, hash)
	}
	return res.GetData(), err
}

// FetchFile downloads the file a received (or sent) message shares,
// checks every chunk's hash before decrypting it, and writes it to dest:
// a file path (replaced), or a directory (default "."), where the sender's
// name, made safe, is used without replacing an existing file ("name (1)",
// …). The file appears only when complete (temporary file, fsync, rename).
// It returns the path written.
func (c *Client) FetchFile(ctx context.Context, messageID, dest string, progress func(done, total int64)) (string, error) {
	fb, err := c.fileOf(messageID)
	if err != nil {
		return "", err
	}
	md, err := c.getChunk(ctx, fb.ManifestHash)
	if err != nil {
		return "", err
	}
	m, err := openManifest(fb, md)
	if err != nil {
		return "", err
	}
	if dest, err = destPath(dest, fb.Name); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".tokenim-download-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := c.downloadChunks(ctx, fb.Key, m, tmp, progress); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return dest, os.Rename(tmp.Name(), dest)
}

// downloadChunks writes m's chunks to w in order, fetching up to
// downloadAhead chunks ahead; each is hash-checked, then decrypted.
func (c *Client) downloadChunks(ctx context.Context, key []byte, m *tokenimv1.FileManifest, w io.Writer, progress func(done, total int64)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		pt  []byte
		err error
	}
	queue := make(chan chan result, downloadAhead)
	go func() {
		defer close(queue)
		for i, h := range m.ChunkHashes {
			ch := make(chan result, 1)
			select {
			case queue <- ch:
			case <-ctx.Done():
				return
			}
			go func() {
				data, err := c.getChunk(ctx, h)
				if err == nil {
					data, err = openFileChunk(key, m, i, data)
				}
				ch <- result{data, err}
			}()
		}
	}()
	var done int64
	for ch := range queue {
		r := <-ch
		if r.err != nil {
			return r.err
		}
		if _, err := w.Write(r.pt); err != nil {
			return err
		}
		done += int64(len(r.pt))
		if progress != nil {
			progress(done, int64(m.Size))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if uint64(done) != m.Size {
		return fmt.Errorf("%w: %d bytes, manifest says %d", ErrFileCorrupt, done, m.Size)
	}
	return nil
}

// destPath is dest itself unless it is a directory ("" is "."); then a
// name in it that does not exist yet, from the sender's name made safe.
func destPath(dest, name string) (string, error) {
	if dest == "" {
		dest = "."
	}
	if st, err := os.Stat(dest); err != nil || !st.IsDir() {
		return dest, nil
	}
	base := fileName(name)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	for i := 0; i < 1000; i++ {
		p := filepath.Join(dest, base)
		if i > 0 {
			p = filepath.Join(dest, fmt.Sprintf("%s (%d)%s", stem, i, ext))
		}
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s already holds %s and 999 numbered copies; give --out a file path", dest, base)
}

// fileOf returns the File body stored for a message id.
func (c *Client) fileOf(messageID string) (*tokenimv1.File, error) {
	b, ok, err := c.store.Get(bucketFileKeys, messageID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoFile, messageID)
	}
	var f tokenimv1.File
	if err := codec.Unmarshal(b, &f, MaxTextBytes+1024); err != nil {
		return nil, err
	}
	return &f, nil
}

// rememberFile keeps a message's File body (with its key) locally.
func (c *Client) rememberFile(messageID string, f *tokenimv1.File) (*FileRef, error) {
	var ref *FileRef
	err := c.store.Update(func(tx *signalstore.Tx) (err error) {
		ref, err = rememberFileTx(tx, messageID, f)
		return err
	})
	return ref, err
}

// rememberFileTx is rememberFile within tx.
func rememberFileTx(tx *signalstore.Tx, messageID string, f *tokenimv1.File) (*FileRef, error) {
	if err := tx.Put(bucketFileKeys, messageID, codec.MustMarshal(f)); err != nil {
		return nil, err
	}
	return &FileRef{Name: fileName(f.Name), Size: f.Size, ManifestHash: hex.EncodeToString(f.ManifestHash)}, nil
}
