package node

import (
	"fmt"

	"github.com/tokenim/tokenim/internal/codec"
	"google.golang.org/protobuf/proto"
)

// strictProto is the node API's binary codec: requests must be canonical
// (package codec), so an envelope with unknown or duplicated fields is
// refused instead of being stored and forwarded.
type strictProto struct{}

func (strictProto) Name() string { return "proto" }

func (strictProto) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("marshal %T: not a protobuf message", v)
	}
	return codec.Marshal(m)
}

// MarshalAppend lets connect marshal into its pooled buffers (a stream
// of deliveries would otherwise allocate a buffer per message).
func (strictProto) MarshalAppend(dst []byte, v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("marshal %T: not a protobuf message", v)
	}
	return codec.MarshalAppend(dst, m)
}

func (strictProto) Unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("unmarshal %T: not a protobuf message", v)
	}
	return codec.Unmarshal(b, m, MaxRequestBytes)
}
