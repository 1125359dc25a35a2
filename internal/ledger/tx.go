package ledger

import (
	"crypto/ed25519"
	"fmt"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/codec"
)

// txDomain prefixes every signed transaction body.
const txDomain = "tokenim/tx/v1\x00"

// SignTx encodes body and signs it with key, returning the encoded Tx.
func SignTx(body *tokenimv1.TxBody, key ed25519.PrivateKey) ([]byte, error) {
	b, err := codec.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode tx body: %w", err)
	}
	sig := ed25519.Sign(key, append([]byte(txDomain), b...))
	return codec.Marshal(&tokenimv1.Tx{Body: b, Signature: sig})
}

// DecodedTx is a Tx whose encodings were checked; the signature is not yet.
type DecodedTx struct {
	Body      *tokenimv1.TxBody
	bodyBytes []byte
	signature []byte
}

// DecodeTx decodes raw strictly (see package codec) and checks the shape of
// the body; it does not verify the signature.
func DecodeTx(raw []byte) (*DecodedTx, error) {
	if len(raw) > MaxTxBytes {
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrTooLarge, len(raw), MaxTxBytes)
	}
	var tx tokenimv1.Tx
	if err := codec.Unmarshal(raw, &tx, MaxTxBytes); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if len(tx.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is %d bytes", ErrDecode, len(tx.Signature))
	}
	var body tokenimv1.TxBody
	if err := codec.Unmarshal(tx.Body, &body, MaxTxBytes); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrDecode, err)
	}
	if body.Msg == nil {
		return nil, ErrUnknownMessage
	}
	return &DecodedTx{Body: &body, bodyBytes: tx.Body, signature: tx.Signature}, nil
}

// VerifyWith checks the signature against an Ed25519 public key.
func (t *DecodedTx) VerifyWith(pub []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: signer key is %d bytes", ErrInvalidKey, len(pub))
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), append([]byte(txDomain), t.bodyBytes...), t.signature) {
		return ErrBadSignature
	}
	return nil
}
