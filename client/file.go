package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
	"github.com/tokenim/tokenim/internal/ledger"
)

// FileRef is what a message that shares a file says about it.
type FileRef struct {
	Name         string `json:"name"`
	Size         uint64 `json:"size"`
	ManifestHash string `json:"manifest_hash"`
}

// ErrFileTooLarge: over MaxFileSize.
var ErrFileTooLarge = errors.New("file too large")

// bucketFileKeys keeps each shared file's key, by message id, apart from
// the history (which `inbox --json` prints).
const bucketFileKeys = "filekeys"

// SendFile encrypts the file at path with a fresh key, uploads its chunks
// and manifest to the network, then sends the recipient the manifest hash
// and key end to end encrypted. progress (may be nil) sees bytes done.
func (c *Client) SendFile(ctx context.Context, to, path string, progress func(done, total int64)) (*Message, error) {
	h, err := ledger.NormalizeHandle(to)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrFileTooLarge, st.Size(), int64(MaxFileSize))
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	manifest, err := c.uploadChunks(ctx, f, st.Size(), key, progress)
	if err != nil {
		return nil, err
	}
	manifest.Name = filepath.Base(path)
	mhash, err := c.putSealed(ctx, key, manifestIndex, codec.MustMarshal(manifest))
	if err != nil {
		return nil, err
	}
	body := &tokenimv1.File{ManifestHash: mhash, Key: key, Name: manifest.Name, Size: manifest.Size}
	return c.sendContent(ctx, h, &tokenimv1.Content{Body: &tokenimv1.Content_File{File: body}}, fileText(body))
}

func fileText(f *tokenimv1.File) string {
	return fmt.Sprintf("[file] %s (%d bytes)", f.Name, f.Size)
}

func (c *Client) uploadChunks(ctx context.Context, r io.Reader, size int64, key []byte, progress func(done, total int64)) (*tokenimv1.FileManifest, error) {
	m := &tokenimv1.FileManifest{Size: uint64(size), ChunkSize: ChunkSize}
	buf := make([]byte, ChunkSize)
	var done int64
	for index := uint64(0); ; index++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			h, perr := c.putSealed(ctx, key, index, buf[:n])
			if perr != nil {
				return nil, perr
			}
			m.ChunkHashes = append(m.ChunkHashes, h)
			done += int64(n)
			if progress != nil {
				progress(done, size)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if done != size {
		return nil, fmt.Errorf("file changed while sending: read %d of %d bytes", done, size)
	}
	return m, nil
}

// putSealed encrypts one chunk and stores it; returns its hash.
func (c *Client) putSealed(ctx context.Context, key []byte, index uint64, pt []byte) ([]byte, error) {
	ct, err := sealChunk(key, index, pt)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(ct)
	if _, err := call(ctx, c, "upload chunk", &tokenimv1.PutChunkRequest{Hash: sum[:], Data: ct}, c.blob.PutChunk); err != nil {
		return nil, err
	}
	return sum[:], nil
}

// getOpened fetches a chunk, checks its hash and decrypts it.
func (c *Client) getOpened(ctx context.Context, key, hash []byte, index uint64) ([]byte, error) {
	res, err := call(ctx, c, "download chunk", &tokenimv1.GetChunkRequest{Hash: hash}, c.blob.GetChunk)
	if connect.CodeOf(err) == connect.CodeNotFound {
		return nil, fmt.Errorf("%w: chunk %d (%x) is on no reachable replica", ErrFileCorrupt, index, hash)
	}
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(res.Data); !bytes.Equal(sum[:], hash) {
		return nil, fmt.Errorf("%w: chunk %d does not match its hash", ErrFileCorrupt, index)
	}
	return openChunk(key, index, res.Data)
}

// FetchFile downloads the file a received (or sent) message shares, checks
// every chunk, and writes it to dest (a directory: the file's own name is
// used). It returns the path written.
func (c *Client) FetchFile(ctx context.Context, messageID, dest string, progress func(done, total int64)) (string, error) {
	fb, err := c.fileOf(messageID)
	if err != nil {
		return "", err
	}
	mb, err := c.getOpened(ctx, fb.Key, fb.ManifestHash, manifestIndex)
	if err != nil {
		return "", err
	}
	var m tokenimv1.FileManifest
	if err := codec.Unmarshal(mb, &m, 1<<20); err != nil || m.Size != fb.Size || m.ChunkSize != ChunkSize ||
		uint64(len(m.ChunkHashes)) != (m.Size+ChunkSize-1)/ChunkSize {
		return "", fmt.Errorf("%w: manifest", ErrFileCorrupt)
	}
	if st, err := os.Stat(dest); err == nil && st.IsDir() {
		dest = filepath.Join(dest, filepath.Base(fb.Name))
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".tokenim-download-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var done int64
	for i, h := range m.ChunkHashes {
		pt, err := c.getOpened(ctx, fb.Key, h, uint64(i))
		if err != nil {
			return "", err
		}
		if _, err := tmp.Write(pt); err != nil {
			return "", err
		}
		done += int64(len(pt))
		if progress != nil {
			progress(done, int64(m.Size))
		}
	}
	if uint64(done) != m.Size {
		return "", fmt.Errorf("%w: %d bytes, manifest says %d", ErrFileCorrupt, done, m.Size)
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return dest, os.Rename(tmp.Name(), dest)
}

// fileOf returns the File body stored for a message id.
func (c *Client) fileOf(messageID string) (*tokenimv1.File, error) {
	b, ok, err := c.store.Get(bucketFileKeys, messageID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no file in message %q (see `tokenim inbox`)", messageID)
	}
	var f tokenimv1.File
	if err := codec.Unmarshal(b, &f, 4096); err != nil {
		return nil, err
	}
	return &f, nil
}

// rememberFile keeps a message's File body (with its key) locally.
func (c *Client) rememberFile(messageID string, f *tokenimv1.File) (*FileRef, error) {
	if err := c.store.Put(bucketFileKeys, messageID, codec.MustMarshal(f)); err != nil {
		return nil, err
	}
	return &FileRef{Name: f.Name, Size: f.Size, ManifestHash: hex.EncodeToString(f.ManifestHash)}, nil
}
