// Package codec is TokenIM's one canonical encoding for protobuf wire types.
//
// Every type that crosses the network or goes into a block is encoded with
// Marshal (deterministic proto3) and decoded with Unmarshal, which accepts an
// input only if it is within a size cap, carries no unknown fields at any
// depth, and re-encodes to exactly the bytes received. So each value has one
// encoding, and a decoded value always re-encodes to the same bytes (hashes
// and signatures over encodings are stable).
package codec

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var (
	// ErrTooLarge: the input is over the cap given to Unmarshal.
	ErrTooLarge = errors.New("codec: input too large")
	// ErrMalformed: the input is not a valid encoding of the type.
	ErrMalformed = errors.New("codec: malformed input")
	// ErrUnknownField: the input carries a field the type does not define.
	ErrUnknownField = errors.New("codec: unknown field")
	// ErrNonCanonical: the input decodes but is not the canonical encoding
	// (fields out of order, duplicated, or default values written out).
	ErrNonCanonical = errors.New("codec: non-canonical encoding")
)

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// Marshal returns the canonical encoding of m.
func Marshal(m proto.Message) ([]byte, error) {
	return marshalOpts.Marshal(m)
}

// MarshalAppend appends the canonical encoding of m to dst.
func MarshalAppend(dst []byte, m proto.Message) ([]byte, error) {
	return marshalOpts.MarshalAppend(dst, m)
}

// MustMarshal is Marshal for values built by this program; an error means a
// broken invariant (an invalid UTF-8 string set by our own code), so it panics.
func MustMarshal(m proto.Message) []byte {
	b, err := marshalOpts.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("codec: marshal %T: %v", m, err))
	}
	return b
}

// Unmarshal decodes b into m if b is a canonical encoding no longer than max
// bytes; otherwise it returns one of the errors above (wrapped).
func Unmarshal(b []byte, m proto.Message, max int) error {
	if len(b) > max {
		return fmt.Errorf("%w: %d bytes, cap %d", ErrTooLarge, len(b), max)
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if hasUnknown(m.ProtoReflect()) {
		return ErrUnknownField
	}
	re, err := marshalOpts.Marshal(m)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(re, b) {
		return ErrNonCanonical
	}
	return nil
}

// hasUnknown reports whether m or any message inside it has unknown fields.
func hasUnknown(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && !found; i++ {
				found = hasUnknown(l.Get(i).Message())
			}
		case fd.IsMap():
			found = true // no TokenIM wire type has maps: map order is not canonical
		case fd.Message() != nil:
			found = hasUnknown(v.Message())
		}
		return !found
	})
	return found
}
