package ledger

import (
	"fmt"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
	"github.com/tokenim/tokenim/internal/policy"
)

// policiesModule owns deployed policy contracts:
//
//	pol/<id>      PolicyRecord (id = hex SHA-256 of the source)
//	poln/<name>   the id deployed under that name
type policiesModule struct{}

func policyKey(id string) []byte       { return []byte("pol/" + id) }
func policyNameKey(name string) []byte { return []byte("poln/" + name) }

func (policiesModule) Name() string { return "policies" }

func (policiesModule) Handles(body *tokenimv1.TxBody) bool {
	_, ok := body.Msg.(*tokenimv1.TxBody_DeployPolicy)
	return ok
}

// Authenticate: an account deploys.
func (policiesModule) Authenticate(r Reader, body *tokenimv1.TxBody) (Signer, error) {
	return accountsModule{}.Authenticate(r, body)
}

func (policiesModule) Validate(ctx *Context, body *tokenimv1.TxBody) error {
	d := body.GetDeployPolicy()
	if err := checkPolicyName(d.Name); err != nil {
		return err
	}
	if v, err := ctx.KV.Get(policyNameKey(d.Name)); err != nil {
		return fmt.Errorf("%w: %v", ErrInternal, err)
	} else if v != nil {
		return fmt.Errorf("%w: %q", ErrPolicyExists, d.Name)
	}
	// CEL compilation and cost estimation are deterministic for a pinned
	// cel-go version: every node reaches the same verdict.
	if _, err := policy.Compile(d.Source); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	return nil
}

func (policiesModule) Apply(ctx *Context, body *tokenimv1.TxBody) error {
	d := body.GetDeployPolicy()
	id := policy.ID(d.Source)
	rec := &tokenimv1.PolicyRecord{Id: id, Name: d.Name, Source: d.Source, Deployer: body.Signer, Height: ctx.Height}
	if old, err := ctx.KV.Get(policyKey(id)); err != nil {
		return fmt.Errorf("%w: %v", ErrInternal, err)
	} else if old == nil {
		if err := setProto(ctx.KV, policyKey(id), rec); err != nil {
			return err
		}
	}
	if err := ctx.KV.Set(policyNameKey(d.Name), []byte(id)); err != nil {
		return fmt.Errorf("%w: %v", ErrInternal, err)
	}
	return nil
}

func checkPolicyName(n string) error {
	if len(n) < 3 || len(n) > 32 {
		return fmt.Errorf("%w: %q: 3-32 characters", ErrInvalidPolicy, n)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: name %q: only a-z, 0-9, _ and -", ErrInvalidPolicy, n)
		}
	}
	return nil
}

// GetPolicy reads a deployed policy by name or id; ErrUnknownPolicy if none.
func GetPolicy(r Reader, nameOrID string) (*tokenimv1.PolicyRecord, error) {
	id := nameOrID
	if v, err := r.Get(policyNameKey(nameOrID)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInternal, err)
	} else if v != nil {
		id = string(v)
	}
	var rec tokenimv1.PolicyRecord
	ok, err := getProto(r, policyKey(id), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPolicy, nameOrID)
	}
	return &rec, nil
}
