package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// fakeBlobs is a BlobService in memory: no node, no network.
type fakeBlobs struct {
	mu       sync.Mutex
	chunks   map[string][]byte
	puts     map[string]int // PutChunk calls by hash
	hasCalls int
	failPut  map[string]int // fail this many PutChunk calls of a hash (unavailable)
	serve    func(hash []byte, data []byte) ([]byte, error)
}

func newFakeBlobs() *fakeBlobs {
	return &fakeBlobs{chunks: map[string][]byte{}, puts: map[string]int{}, failPut: map[string]int{}}
}

func (f *fakeBlobs) PutChunk(_ context.Context, r *connect.Request[tokenimv1.PutChunkRequest]) (*connect.Response[tokenimv1.PutChunkResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := string(r.Msg.Hash)
	f.puts[h]++
	if f.failPut[h] > 0 {
		f.failPut[h]--
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("no quorum"))
	}
	f.chunks[h] = bytes.Clone(r.Msg.Data)
	return connect.NewResponse(&tokenimv1.PutChunkResponse{}), nil
}

func (f *fakeBlobs) GetChunk(_ context.Context, r *connect.Request[tokenimv1.GetChunkRequest]) (*connect.Response[tokenimv1.GetChunkResponse], error) {
	f.mu.Lock()
	data, ok := f.chunks[string(r.Msg.Hash)]
	serve := f.serve
	f.mu.Unlock()
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no such chunk"))
	}
	if serve != nil {
		var err error
		if data, err = serve(r.Msg.Hash, bytes.Clone(data)); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&tokenimv1.GetChunkResponse{Data: data}), nil
}

func (f *fakeBlobs) HasChunks(_ context.Context, r *connect.Request[tokenimv1.HasChunksRequest]) (*connect.Response[tokenimv1.HasChunksResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hasCalls++
	res := &tokenimv1.HasChunksResponse{}
	for _, h := range r.Msg.Hashes {
		_, ok := f.chunks[string(h)]
		res.Present = append(res.Present, ok)
	}
	return connect.NewResponse(res), nil
}

// fakeClient is a Client with a live session token, so call() needs no
// node to authenticate.
func fakeClient(b *fakeBlobs) *Client {
	return &Client{blob: b, token: "test", tokenTo: time.Now().Add(time.Hour)}
}

// upload is SendFile's chunk pipeline without the file and the message.
func upload(t *testing.T, c *Client, data, key []byte) (*tokenimv1.File, []int64) {
	t.Helper()
	var seen []int64
	up := &uploader{c: c, total: int64(len(data)), progress: func(done, _ int64) { seen = append(seen, done) }}
	ctx := context.Background()
	m, err := sealFile(bytes.NewReader(data), int64(len(data)), key, func(sc sealedChunk) error {
		return up.add(ctx, sc, int64(len(sc.Data)-16))
	})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := sealManifest(key, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.add(ctx, mc, 0); err != nil {
		t.Fatal(err)
	}
	if err := up.flush(ctx); err != nil {
		t.Fatal(err)
	}
	return &tokenimv1.File{ManifestHash: mc.Hash, Key: key, Name: "f", Size: m.Size}, seen
}

func download(c *Client, f *tokenimv1.File) ([]byte, error) {
	ctx := context.Background()
	md, err := c.getChunk(ctx, f.ManifestHash)
	if err != nil {
		return nil, err
	}
	m, err := openManifest(f, md)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = c.downloadChunks(ctx, f.Key, m, &out, nil)
	return out.Bytes(), err
}

func TestUploadSkipsPresentChunksAndRetries(t *testing.T) {
	blobs := newFakeBlobs()
	c := fakeClient(blobs)
	data := make([]byte, 9*ChunkSize+3) // 10 chunks + manifest: 3 batches
	rand.Read(data)
	key := make([]byte, 32)
	rand.Read(key)
	// Chunk 2 is already on the node; chunk 5's first upload fails.
	present, _ := sealIndexed(key, 2, data[2*ChunkSize:3*ChunkSize])
	flaky, _ := sealIndexed(key, 5, data[5*ChunkSize:6*ChunkSize])
	blobs.chunks[string(present.Hash)] = present.Data
	blobs.failPut[string(flaky.Hash)] = 1
	f, progress := upload(t, c, data, key)
	if blobs.hasCalls != 4 { // batches 0-3, 4-7 (twice: retried), 8-9 + manifest
		t.Errorf("%d HasChunks calls, want 4", blobs.hasCalls)
	}
	if len(blobs.chunks) != 11 {
		t.Errorf("%d chunks stored, want 11", len(blobs.chunks))
	}
	total := 0
	for _, n := range blobs.puts {
		total += n
	}
	// 9 chunks + manifest once, chunk 2 never, chunk 5 twice; the rest
	// of chunk 5's batch was not sent again.
	if p, f := blobs.puts[string(present.Hash)], blobs.puts[string(flaky.Hash)]; total != 11 || p != 0 || f != 2 {
		t.Errorf("%d PutChunk calls (present chunk %d, flaky chunk %d), want 11 (0, 2)", total, p, f)
	}
	if fmt.Sprint(progress) != fmt.Sprint([]int64{4 * ChunkSize, 8 * ChunkSize, int64(len(data))}) {
		t.Errorf("progress %v", progress)
	}
	got, err := download(c, f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download: %v", err)
	}
}

func TestDownloadRefusesBadChunks(t *testing.T) {
	blobs := newFakeBlobs()
	c := fakeClient(blobs)
	data := make([]byte, 6*ChunkSize+1)
	rand.Read(data)
	f, _ := upload(t, c, data, bytes.Repeat([]byte{3}, 32))
	var victim []byte
	for h, d := range blobs.chunks { // a full chunk, not the manifest
		if len(d) == ChunkSize+16 {
			victim = []byte(h)
			break
		}
	}
	cases := map[string]func(h, d []byte) ([]byte, error){
		"flipped byte": func(h, d []byte) ([]byte, error) {
			if bytes.Equal(h, victim) {
				d[len(d)/2] ^= 1
			}
			return d, nil
		},
		"truncated": func(h, d []byte) ([]byte, error) {
			if bytes.Equal(h, victim) {
				d = d[:len(d)-1]
			}
			return d, nil
		},
		"missing everywhere": func(h, d []byte) ([]byte, error) {
			if bytes.Equal(h, victim) {
				return nil, connect.NewError(connect.CodeNotFound, errors.New("gone"))
			}
			return d, nil
		},
		"rotten manifest": func(h, d []byte) ([]byte, error) {
			if bytes.Equal(h, f.ManifestHash) {
				d[0] ^= 1
			}
			return d, nil
		},
	}
	setServe := func(s func(h, d []byte) ([]byte, error)) {
		blobs.mu.Lock()
		blobs.serve = s
		blobs.mu.Unlock()
	}
	for name, serve := range cases {
		setServe(serve)
		if _, err := download(c, f); !errors.Is(err, ErrFileCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	setServe(nil)
	if got, err := download(c, f); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("intact: %v", err)
	}
}
