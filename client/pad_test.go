package client

import (
	"bytes"
	"errors"
	"testing"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
)

func TestPad(t *testing.T) {
	for _, n := range []int{0, 1, 158, 159, 160, 161, 1000} {
		in := bytes.Repeat([]byte{0xab}, n)
		p := pad(in)
		if len(p)%PadBlock != 0 || len(p) <= n {
			t.Fatalf("pad(%d bytes) gave %d bytes", n, len(p))
		}
		out, err := unpad(p)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("unpad(pad(%d bytes)): %v", n, err)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, PadBlock), append(make([]byte, PadBlock-1), 1)} {
		if _, err := unpad(bad); err == nil {
			t.Fatalf("unpad accepted %x", bad)
		}
	}
}

func TestDecodeContentBindsID(t *testing.T) {
	id := []byte("0123456789abcdef")
	raw := codec.MustMarshal(&tokenimv1.Content{MessageId: id, SentAtMs: 1, Body: &tokenimv1.Content_Text{Text: &tokenimv1.Text{Body: "hi"}}})
	env := &tokenimv1.Envelope{Id: id, Commitment: Commitment(raw)}
	if c, err := decodeContent(pad(raw), env); err != nil || c.GetText().GetBody() != "hi" {
		t.Fatalf("decode: %v", err)
	}
	if _, err := decodeContent(pad(raw), &tokenimv1.Envelope{Id: []byte("another-id-00000")}); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("content moved to another envelope id was accepted: %v", err)
	}
	other := codec.MustMarshal(&tokenimv1.Content{MessageId: id, SentAtMs: 1, Body: &tokenimv1.Content_Text{Text: &tokenimv1.Text{Body: "ho"}}})
	if _, err := decodeContent(pad(raw), &tokenimv1.Envelope{Id: id, Commitment: Commitment(other)}); !errors.Is(err, ErrCommitment) {
		t.Fatalf("a commitment to other content was accepted: %v", err)
	}
}

func FuzzDecodeContent(f *testing.F) {
	id := []byte("0123456789abcdef")
	f.Add(pad(codec.MustMarshal(&tokenimv1.Content{MessageId: id, Body: &tokenimv1.Content_Text{Text: &tokenimv1.Text{Body: "x"}}})))
	f.Add(pad(nil))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeContent(b, &tokenimv1.Envelope{Id: id})
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error is not ErrDecrypt: %v", err)
			}
			return
		}
		if !bytes.Equal(c.MessageId, id) {
			t.Fatal("accepted content for another id")
		}
	})
}

func TestOrderConversations(t *testing.T) {
	ms := []Message{
		{From: "a", To: "me", Counter: 2, Text: "a2"},
		{From: "b", To: "me", Counter: 1, Text: "b1"},
		{From: "a", To: "me", Counter: 1, Text: "a1"},
		{From: "x", To: "me", Text: "undecryptable"},
		{From: "a", To: "me", Counter: 3, Text: "a3"},
	}
	orderConversations(ms)
	var got []string
	for _, m := range ms {
		got = append(got, m.Text)
	}
	want := []string{"a1", "b1", "a2", "undecryptable", "a3"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
