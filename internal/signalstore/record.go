package signalstore

import "fmt"

// encodeRecord returns a libsignal record's serialization. libsignal
// panics when serializing some records it considers incomplete (a fresh
// session record, for one); that becomes ErrInvalid instead of a crash.
func encodeRecord(what string, serialize func() []byte) (b []byte, err error) {
	defer func() {
		if recover() != nil {
			b, err = nil, fmt.Errorf("%w: %s record cannot be serialized", ErrInvalid, what)
		}
	}()
	return serialize(), nil
}

// decodeRecord parses an authenticated value with a libsignal constructor.
// Any failure, panics included, is ErrCorrupt.
func decodeRecord[T any](parse func() (T, error)) (rec T, err error) {
	defer func() {
		if recover() != nil {
			var zero T
			rec, err = zero, ErrCorrupt
		}
	}()
	rec, err = parse()
	if err != nil {
		var zero T
		return zero, ErrCorrupt
	}
	return rec, nil
}
