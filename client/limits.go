package client

// Client-side caps.
const (
	// MaxTextBytes caps a text message (UTF-8 bytes). Longer content goes
	// as a file.
	MaxTextBytes = 32 << 10
	// MaxFileSize caps a file sent with SendFile (2 GiB; docs/files.md).
	MaxFileSize = 2 << 30
	// ChunkSize is the plaintext size of every file chunk but the last.
	ChunkSize = 1 << 20
	// uploadBatch is how many chunks SendFile asks HasChunks about at once
	// and uploads concurrently (it holds that many sealed chunks).
	uploadBatch = 4
	// downloadAhead is how many chunks FetchFile fetches ahead of the one
	// it writes.
	downloadAhead = 4
	// PadBlock is the padding block: a plaintext is padded to a multiple of
	// it before encryption, so ciphertext sizes reveal only a bucket.
	PadBlock = 160
	// InitialPrekeys is how many one-time prekeys an account uploads.
	InitialPrekeys = 100
	// DeviceID is the Signal device id (one device per account for now).
	DeviceID = 1
)
