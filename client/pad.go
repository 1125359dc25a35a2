package client

import "errors"

var errPadding = errors.New("bad padding")

// pad appends 0x80 and zeros up to a multiple of PadBlock (ISO/IEC 7816-4).
func pad(b []byte) []byte {
	n := len(b) + 1
	if r := n % PadBlock; r != 0 {
		n += PadBlock - r
	}
	out := make([]byte, n)
	copy(out, b)
	out[len(b)] = 0x80
	return out
}

// unpad removes pad's padding.
func unpad(b []byte) ([]byte, error) {
	if len(b) == 0 || len(b)%PadBlock != 0 {
		return nil, errPadding
	}
	for i := len(b) - 1; i >= 0; i-- {
		switch b[i] {
		case 0:
			continue
		case 0x80:
			return b[:i], nil
		default:
			return nil, errPadding
		}
	}
	return nil, errPadding
}
