package client

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/blob"
	"google.golang.org/protobuf/proto"
)

func TestChunkCrypto(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	pt := []byte("a chunk of a file")
	ct, err := sealChunk(key, 3, pt)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openChunk(key, 3, ct); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("round trip: %v", err)
	}
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 1
		if _, err := openChunk(key, 3, bad); !errors.Is(err, ErrFileCorrupt) {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if _, err := openChunk(key, 4, ct); !errors.Is(err, ErrFileCorrupt) {
		t.Fatal("chunk moved to another position accepted")
	}
	if _, err := openChunk(bytes.Repeat([]byte{8}, 32), 3, ct); !errors.Is(err, ErrFileCorrupt) {
		t.Fatal("wrong key accepted")
	}
	if _, err := openChunk(key, manifestIndex, ct); err == nil {
		t.Fatal("a chunk opened as the manifest")
	}
}

// sealed is a file sealed into an in-memory chunk store, as a node would
// hold it, and the File body its message would carry.
type sealed struct {
	file   *tokenimv1.File
	chunks map[string][]byte // string(hash) → sealed bytes
	hashes [][]byte          // file chunks in order
}

func sealForTest(t *testing.T, data []byte) *sealed {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	s := &sealed{chunks: map[string][]byte{}}
	m, err := sealFile(bytes.NewReader(data), int64(len(data)), key, func(sc sealedChunk) error {
		if sum := sha256.Sum256(sc.Data); !bytes.Equal(sum[:], sc.Hash) || sc.Index != uint64(len(s.hashes)) {
			t.Fatalf("chunk %d: wrong name or order", sc.Index)
		}
		s.chunks[string(sc.Hash)] = sc.Data
		s.hashes = append(s.hashes, sc.Hash)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Name = "data.bin"
	mc, err := sealManifest(key, m)
	if err != nil {
		t.Fatal(err)
	}
	s.chunks[string(mc.Hash)] = mc.Data
	s.file = &tokenimv1.File{ManifestHash: mc.Hash, Key: key, Name: m.Name, Size: m.Size}
	return s
}

// open is FetchFile without the network: manifest, then every chunk
// hash-checked and decrypted in order.
func (s *sealed) open(f *tokenimv1.File) ([]byte, error) {
	m, err := openManifest(f, s.chunks[string(f.ManifestHash)])
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for i, h := range m.ChunkHashes {
		pt, err := openFileChunk(f.Key, m, i, s.chunks[string(h)])
		if err != nil {
			return nil, err
		}
		out.Write(pt)
	}
	return out.Bytes(), nil
}

func TestFileRoundTripSizes(t *testing.T) {
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2*ChunkSize + 5} {
		data := make([]byte, size)
		rand.Read(data)
		s := sealForTest(t, data)
		if want := (size + ChunkSize - 1) / ChunkSize; len(s.hashes) != want {
			t.Fatalf("size %d: %d chunks, want %d", size, len(s.hashes), want)
		}
		got, err := s.open(s.file)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: round trip: %v", size, err)
		}
	}
}

// Every tampering with stored chunks or the manifest is refused, with the
// stored name unchanged (a node serving other bytes) or re-hashed (bytes
// that pass the hash check but not the decryption).
func TestFileTamper(t *testing.T) {
	data := make([]byte, 2*ChunkSize+1000)
	rand.Read(data)
	s := sealForTest(t, data)
	names := append([][]byte{s.file.ManifestHash}, s.hashes...)
	for ci, h := range names {
		orig := s.chunks[string(h)]
		for _, pos := range []int{0, 1, len(orig) / 2, len(orig) - 17, len(orig) - 1} {
			bad := bytes.Clone(orig)
			bad[pos] ^= 0x40
			s.chunks[string(h)] = bad
			if _, err := s.open(s.file); !errors.Is(err, ErrFileCorrupt) {
				t.Fatalf("chunk %d (0 = manifest), byte %d flipped: %v", ci, pos, err)
			}
		}
		s.chunks[string(h)] = orig
	}
	// The hash check comes first: decrypting a chunk under the wrong index
	// (as if the hash check were skipped) fails too.
	if _, err := openChunk(s.file.Key, 0, s.chunks[string(s.hashes[1])]); !errors.Is(err, ErrFileCorrupt) {
		t.Fatal("chunk 1 opened as chunk 0")
	}
	swapped := maps.Clone(s.chunks)
	swapped[string(s.hashes[0])], swapped[string(s.hashes[1])] = s.chunks[string(s.hashes[1])], s.chunks[string(s.hashes[0])]
	if _, err := (&sealed{chunks: swapped}).open(s.file); !errors.Is(err, ErrFileCorrupt) {
		t.Fatalf("swapped chunks: %v", err)
	}
	wrongKey := proto.Clone(s.file).(*tokenimv1.File)
	wrongKey.Key = bytes.Repeat([]byte{1}, 32)
	if _, err := s.open(wrongKey); !errors.Is(err, ErrFileCorrupt) {
		t.Fatalf("wrong key: %v", err)
	}
	lies := proto.Clone(s.file).(*tokenimv1.File)
	lies.Size++
	if _, err := s.open(lies); !errors.Is(err, ErrFileCorrupt) {
		t.Fatalf("size in the message differs from the manifest: %v", err)
	}
	if got, err := s.open(s.file); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("untouched file: %v", err)
	}
}

// A manifest sealed with the right key (by the sender) that drops or
// reorders chunks still cannot produce a different file silently.
func TestFileManifestLies(t *testing.T) {
	data := make([]byte, 2*ChunkSize+1000)
	rand.Read(data)
	s := sealForTest(t, data)
	reseal := func(hashes [][]byte) *tokenimv1.File {
		mc, err := sealManifest(s.file.Key, &tokenimv1.FileManifest{Name: "x", Size: s.file.Size, ChunkSize: ChunkSize, ChunkHashes: hashes})
		if err != nil {
			t.Fatal(err)
		}
		s.chunks[string(mc.Hash)] = mc.Data
		f := proto.Clone(s.file).(*tokenimv1.File)
		f.ManifestHash = mc.Hash
		return f
	}
	if _, err := s.open(reseal(s.hashes[:2])); !errors.Is(err, ErrFileCorrupt) {
		t.Fatalf("dropped last chunk: %v", err)
	}
	if _, err := s.open(reseal([][]byte{s.hashes[1], s.hashes[0], s.hashes[2]})); !errors.Is(err, ErrFileCorrupt) {
		t.Fatalf("reordered chunks: %v", err)
	}
}

// The manifest of the largest file, with the longest name, fits in one
// chunk a node accepts.
func TestManifestFitsAChunk(t *testing.T) {
	m := &tokenimv1.FileManifest{Name: strings.Repeat("n", 255), Size: MaxFileSize, ChunkSize: ChunkSize}
	for range MaxFileSize / ChunkSize {
		m.ChunkHashes = append(m.ChunkHashes, bytes.Repeat([]byte{0xff}, 32))
	}
	mc, err := sealManifest(make([]byte, 32), m)
	if err != nil {
		t.Fatal(err)
	}
	if len(mc.Data) > maxManifest || len(mc.Data) > blob.MaxChunk {
		t.Fatalf("manifest of %d bytes", len(mc.Data))
	}
}

func TestSealFileRefusesOversize(t *testing.T) {
	_, err := sealFile(bytes.NewReader(nil), MaxFileSize+1, make([]byte, 32), func(sealedChunk) error { return nil })
	if !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("got %v", err)
	}
	if _, err := sealFile(bytes.NewReader(make([]byte, 10)), 20, make([]byte, 32), func(sealedChunk) error { return nil }); err == nil {
		t.Fatal("a file shorter than its size sealed")
	}
}

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{
		"report.pdf":             "report.pdf",
		"../../etc/passwd":       "passwd",
		`..\..\win.ini`:          "win.ini",
		".bashrc":                "bashrc",
		"..":                     "file",
		"":                       "file",
		"/":                      "file",
		"a\nb\x1b[31m":           "a_b_[31m",
		"evil\u202egpj.exe":      "evil_gpj.exe",
		strings.Repeat("é", 200): strings.Repeat("é", 127),
	} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDestPathNeverReplacesInADirectory(t *testing.T) {
	dir := t.TempDir()
	p, err := destPath(dir, "../a.txt")
	if err != nil || p != filepath.Join(dir, "a.txt") {
		t.Fatalf("%s %v", p, err)
	}
	os.WriteFile(p, nil, 0o600)
	if p, _ = destPath(dir, "a.txt"); p != filepath.Join(dir, "a (1).txt") {
		t.Fatalf("existing file: %s", p)
	}
	file := filepath.Join(dir, "chosen")
	if p, _ = destPath(file, "a.txt"); p != file {
		t.Fatalf("explicit path: %s", p)
	}
}
