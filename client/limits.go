package client

// Client-side caps.
const (
	// MaxTextBytes caps a text message (UTF-8 bytes). Longer content goes
	// as a file (a later feature).
	MaxTextBytes = 32 << 10
	// PadBlock is the padding block: a plaintext is padded to a multiple of
	// it before encryption, so ciphertext sizes reveal only a bucket.
	PadBlock = 160
	// InitialPrekeys is how many one-time prekeys an account uploads.
	InitialPrekeys = 100
	// DeviceID is the Signal device id (one device per account for now).
	DeviceID = 1
)
