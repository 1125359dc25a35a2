package ledger

import "errors"

// Result codes returned in ABCI responses and by the node API. This list is
// append-only: a code never changes meaning.
const (
	CodeOK               uint32 = 0
	CodeDecode           uint32 = 1
	CodeBadSignature     uint32 = 2
	CodeBadSequence      uint32 = 3
	CodeHandleTaken      uint32 = 4
	CodeInvalidHandle    uint32 = 5
	CodeUnknownAccount   uint32 = 6
	CodeInsufficientWork uint32 = 7
	CodeInvalidKey       uint32 = 8
	CodeWrongChain       uint32 = 9
	CodeTooLarge         uint32 = 10
	CodeInvalidPrekey    uint32 = 11
	CodeUnknownMessage   uint32 = 12
	CodeInternal         uint32 = 13
	CodeUnknownNode      uint32 = 14
	CodeInvalidNode      uint32 = 15
	CodeNotValidator     uint32 = 16
	CodeUnknownProposal  uint32 = 17
	CodeAlreadyApproved  uint32 = 18
	CodeInvalidChange    uint32 = 19
	CodeInvalidHomeNodes uint32 = 20
	CodeRegistryFull     uint32 = 21
	CodeInvalidPolicy    uint32 = 22
	CodePolicyExists     uint32 = 23
	CodeUnknownPolicy    uint32 = 24
	CodeUnknownGroup     uint32 = 25
	CodeGroupExists      uint32 = 26
	CodeInvalidGroup     uint32 = 27
	CodeDenied           uint32 = 28
	CodeInvalidAnchor    uint32 = 29
)

// Sentinel errors, one per code.
var (
	ErrDecode           = errors.New("transaction does not decode")
	ErrBadSignature     = errors.New("signature does not verify with the signer's account key")
	ErrBadSequence      = errors.New("wrong sequence number (replayed or out of order)")
	ErrHandleTaken      = errors.New("handle is taken")
	ErrInvalidHandle    = errors.New("invalid handle: 3-32 characters of a-z, 0-9 and _")
	ErrUnknownAccount   = errors.New("unknown account")
	ErrInsufficientWork = errors.New("proof of work below the chain's difficulty")
	ErrInvalidKey       = errors.New("invalid key")
	ErrWrongChain       = errors.New("transaction is for another chain")
	ErrTooLarge         = errors.New("transaction too large")
	ErrInvalidPrekey    = errors.New("signed prekey is not signed by the identity key")
	ErrUnknownMessage   = errors.New("transaction carries no known message")
	ErrInternal         = errors.New("internal ledger error")
	ErrUnknownNode      = errors.New("unknown node")
	ErrInvalidNode      = errors.New("invalid node registration or node signer")
	ErrNotValidator     = errors.New("signing node is not a current validator")
	ErrUnknownProposal  = errors.New("unknown validator proposal")
	ErrAlreadyApproved  = errors.New("validator already approved this proposal")
	ErrInvalidChange    = errors.New("invalid validator set change")
	ErrInvalidHomeNodes = errors.New("home nodes must be 1 to 3 distinct registered node ids")
	ErrRegistryFull     = errors.New("node registry is full")
	ErrInvalidPolicy    = errors.New("invalid policy")
	ErrPolicyExists     = errors.New("a policy of that name exists")
	ErrUnknownPolicy    = errors.New("unknown policy")
	ErrUnknownGroup     = errors.New("unknown group")
	ErrGroupExists      = errors.New("a group of that name exists")
	ErrInvalidGroup     = errors.New("invalid group change")
	ErrDenied           = errors.New("denied by the group's policy")
	ErrInvalidAnchor    = errors.New("invalid log anchor")
)

var codeErrs = []struct {
	code uint32
	err  error
}{
	{CodeDecode, ErrDecode},
	{CodeBadSignature, ErrBadSignature},
	{CodeBadSequence, ErrBadSequence},
	{CodeHandleTaken, ErrHandleTaken},
	{CodeInvalidHandle, ErrInvalidHandle},
	{CodeUnknownAccount, ErrUnknownAccount},
	{CodeInsufficientWork, ErrInsufficientWork},
	{CodeInvalidKey, ErrInvalidKey},
	{CodeWrongChain, ErrWrongChain},
	{CodeTooLarge, ErrTooLarge},
	{CodeInvalidPrekey, ErrInvalidPrekey},
	{CodeUnknownMessage, ErrUnknownMessage},
	{CodeInternal, ErrInternal},
	{CodeUnknownNode, ErrUnknownNode},
	{CodeInvalidNode, ErrInvalidNode},
	{CodeNotValidator, ErrNotValidator},
	{CodeUnknownProposal, ErrUnknownProposal},
	{CodeAlreadyApproved, ErrAlreadyApproved},
	{CodeInvalidChange, ErrInvalidChange},
	{CodeInvalidHomeNodes, ErrInvalidHomeNodes},
	{CodeRegistryFull, ErrRegistryFull},
	{CodeInvalidPolicy, ErrInvalidPolicy},
	{CodePolicyExists, ErrPolicyExists},
	{CodeUnknownPolicy, ErrUnknownPolicy},
	{CodeUnknownGroup, ErrUnknownGroup},
	{CodeGroupExists, ErrGroupExists},
	{CodeInvalidGroup, ErrInvalidGroup},
	{CodeDenied, ErrDenied},
	{CodeInvalidAnchor, ErrInvalidAnchor},
}

// Code maps an error from this package to its result code.
func Code(err error) uint32 {
	if err == nil {
		return CodeOK
	}
	for _, c := range codeErrs {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// CodeError maps a result code back to its sentinel error (nil for CodeOK).
func CodeError(code uint32) error {
	if code == CodeOK {
		return nil
	}
	for _, c := range codeErrs {
		if c.code == code {
			return c.err
		}
	}
	return ErrInternal
}
