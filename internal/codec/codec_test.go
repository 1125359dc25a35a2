package codec

import (
	"errors"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestRoundTrip(t *testing.T) {
	env := &tokenimv1.Envelope{Id: make([]byte, 16), To: "bob", From: "alice", Type: tokenimv1.EnvelopeType_ENVELOPE_TYPE_MESSAGE, Ciphertext: []byte{1, 2, 3}}
	b := MustMarshal(env)
	var got tokenimv1.Envelope
	if err := Unmarshal(b, &got, 1024); err != nil {
		t.Fatal(err)
	}
	if got.To != "bob" || got.From != "alice" || string(got.Ciphertext) != "\x01\x02\x03" {
		t.Fatalf("round trip changed the value: %v", &got)
	}
}

func TestRejects(t *testing.T) {
	canon := MustMarshal(&tokenimv1.Text{Body: "hi"})
	unknown := protowire.AppendTag(append([]byte{}, canon...), 99, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 1)
	// field 1 written twice: proto keeps the last, re-encoding differs.
	dup := append(append([]byte{}, canon...), canon...)
	// a default value written out explicitly is not canonical.
	explicitDefault := protowire.AppendTag(nil, 1, protowire.BytesType)
	explicitDefault = protowire.AppendBytes(explicitDefault, nil)
	nested := MustMarshal(&tokenimv1.Content{Body: &tokenimv1.Content_Text{Text: &tokenimv1.Text{Body: "x"}}})
	nestedUnknown := protowire.AppendTag(nil, 10, protowire.BytesType)
	nestedUnknown = protowire.AppendBytes(nestedUnknown, unknown)
	cases := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"too large", canon, 2, ErrTooLarge},
		{"garbage", []byte{0xff, 0xff, 0xff}, 100, ErrMalformed},
		{"unknown field", unknown, 100, ErrUnknownField},
		{"duplicate field", dup, 100, ErrNonCanonical},
		{"explicit default", explicitDefault, 100, ErrNonCanonical},
		{"nested unknown", nestedUnknown, 100, ErrUnknownField},
	}
	_ = nested
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m tokenimv1.Text
			var err error
			if c.name == "nested unknown" {
				err = Unmarshal(c.in, &tokenimv1.Content{}, c.max)
			} else {
				err = Unmarshal(c.in, &m, c.max)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}
