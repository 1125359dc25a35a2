package ledger

import (
	"fmt"
	"strings"
)

// NormalizeHandle returns the canonical (lowercase) form of a handle, with a
// leading '@' removed, or ErrInvalidHandle.
func NormalizeHandle(h string) (string, error) {
	h = strings.TrimPrefix(h, "@")
	if len(h) < MinHandle || len(h) > MaxHandle {
		return "", fmt.Errorf("%w: %q has %d characters", ErrInvalidHandle, h, len(h))
	}
	out := make([]byte, len(h))
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			out[i] = c
		case c >= 'A' && c <= 'Z':
			out[i] = c + ('a' - 'A')
		default:
			return "", fmt.Errorf("%w: %q contains %q", ErrInvalidHandle, h, c)
		}
	}
	return string(out), nil
}
