package ledger

import (
	"fmt"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/policy"
)

// conversationsModule owns 1:1 conversation policies:
// cp/<a>/<b> (a < b) → policy id.
type conversationsModule struct{}

func conversationKey(x, y string) []byte {
	if y < x {
		x, y = y, x
	}
	return []byte("cp/" + x + "/" + y)
}

func (conversationsModule) Name() string { return "conversations" }

func (conversationsModule) Handles(body *tokenimv1.TxBody) bool {
	_, ok := body.Msg.(*tokenimv1.TxBody_SetConversationPolicy)
	return ok
}

func (conversationsModule) Authenticate(r Reader, body *tokenimv1.TxBody) (Signer, error) {
	return accountsModule{}.Authenticate(r, body)
}

func (conversationsModule) Validate(ctx *Context, body *tokenimv1.TxBody) error {
	_, err := conversationPolicyID(ctx.KV, body)
	return err
}

func (conversationsModule) Apply(ctx *Context, body *tokenimv1.TxBody) error {
	id, err := conversationPolicyID(ctx.KV, body)
	if err != nil {
		return err
	}
	key := conversationKey(body.Signer, body.GetSetConversationPolicy().Peer)
	if id == "" {
		return ctx.KV.Delete(key)
	}
	return ctx.KV.Set(key, []byte(id))
}

func conversationPolicyID(r Reader, body *tokenimv1.TxBody) (string, error) {
	m := body.GetSetConversationPolicy()
	peer, err := NormalizeHandle(m.Peer)
	if err != nil || peer != m.Peer {
		return "", fmt.Errorf("%w: peer %q", ErrInvalidHandle, m.Peer)
	}
	if peer == body.Signer {
		return "", fmt.Errorf("%w: a conversation needs two accounts", ErrInvalidPolicy)
	}
	if _, err := GetAccount(r, peer); err != nil {
		return "", err
	}
	if m.Policy == "" {
		return "", nil
	}
	return resolvePolicy(r, m.Policy)
}

// ConversationPolicy returns the compiled policy of a 1:1 conversation, or
// nil if it has none.
func ConversationPolicy(r Reader, x, y string) (*policy.Policy, error) {
	id, err := r.Get(conversationKey(x, y))
	if err != nil || id == nil {
		return nil, err
	}
	return compiledPolicy(r, string(id))
}

// ConversationPolicyRecord returns the record of the policy attached to a
// 1:1 conversation, or nil.
func ConversationPolicyRecord(r Reader, x, y string) (*tokenimv1.PolicyRecord, error) {
	id, err := r.Get(conversationKey(x, y))
	if err != nil || id == nil {
		return nil, err
	}
	if string(id) == policy.ID(policy.Defaults) {
		return &tokenimv1.PolicyRecord{Id: string(id), Name: defaultPolicyName, Source: policy.Defaults}, nil
	}
	return GetPolicy(r, string(id))
}
