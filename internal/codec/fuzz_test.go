package codec

import (
	"bytes"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/proto"
)

// Every wire type a node or client decodes: whatever Unmarshal accepts
// re-encodes to the same bytes.
func FuzzUnmarshal(f *testing.F) {
	f.Add(MustMarshal(&tokenimv1.Envelope{Id: make([]byte, 16), To: "bob", From: "alice", Type: 1, Ciphertext: []byte{1, 2}}))
	f.Add(MustMarshal(&tokenimv1.Content{MessageId: []byte{1}, SentAtMs: 5, Body: &tokenimv1.Content_Text{Text: &tokenimv1.Text{Body: "hi"}}}))
	f.Add(MustMarshal(&tokenimv1.Account{Handle: "alice", Sequence: 3, SignedPrekey: &tokenimv1.SignedPrekey{Id: 1}}))
	f.Add(MustMarshal(&tokenimv1.TxBody{ChainId: "c", Signer: "alice", Msg: &tokenimv1.TxBody_RotateSignedPrekey{RotateSignedPrekey: &tokenimv1.RotateSignedPrekey{}}}))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	types := []func() proto.Message{
		func() proto.Message { return &tokenimv1.Envelope{} },
		func() proto.Message { return &tokenimv1.Content{} },
		func() proto.Message { return &tokenimv1.Account{} },
		func() proto.Message { return &tokenimv1.TxBody{} },
		func() proto.Message { return &tokenimv1.Tx{} },
		func() proto.Message { return &tokenimv1.KeyEvent{} },
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mk := range types {
			m := mk()
			if err := Unmarshal(b, m, 1<<16); err != nil {
				continue
			}
			re, err := Marshal(m)
			if err != nil || !bytes.Equal(re, b) {
				t.Fatalf("%T accepted %x but re-encodes to %x", m, b, re)
			}
		}
	})
}
