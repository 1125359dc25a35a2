package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
)

// Limits on policies.
const (
	MaxSourceBytes = 16 << 10
	// MaxStaticCost bounds each rule's worst-case cost, estimated at deploy
	// with every list at MaxListLen and every string at MaxStringLen.
	MaxStaticCost = 100_000
	// MaxActualCost stops an evaluation (a second, runtime bound).
	MaxActualCost = 100_000
	MaxListLen    = 10_000
	MaxStringLen  = 64
)

var (
	// ErrCompile: a rule does not parse or type-check (unknown input,
	// wrong result type) or the source is malformed.
	ErrCompile = errors.New("policy does not compile")
	// ErrCost: a rule's static cost estimate is over MaxStaticCost.
	ErrCost = errors.New("policy rule too expensive")
	// ErrEval: evaluation failed (actual cost over the limit, bad input).
	ErrEval = errors.New("policy evaluation failed")
)

// Policy is a compiled policy.
type Policy struct {
	id     string
	source string
	rules  map[string]cel.Program
	text   map[string]string
	uses   map[string]map[string]bool // rule → the inputs it refers to
}

// ID is the policy id: hex SHA-256 of its source.
func (p *Policy) ID() string { return p.id }

// Source is the policy text as deployed.
func (p *Policy) Source() string { return p.source }

// ID computes a source's policy id.
func ID(source string) string {
	s := sha256.Sum256([]byte(source))
	return hex.EncodeToString(s[:])
}

// Compile parses and checks a policy; rules it does not define take the
// Defaults' rule.
func Compile(source string) (*Policy, error) {
	if len(source) > MaxSourceBytes {
		return nil, fmt.Errorf("%w: %d bytes (cap %d)", ErrCompile, len(source), MaxSourceBytes)
	}
	own, err := parse(source)
	if err != nil {
		return nil, err
	}
	defaults, err := parse(Defaults)
	if err != nil {
		panic("policy: Defaults do not parse: " + err.Error())
	}
	p := &Policy{id: ID(source), source: source, rules: map[string]cel.Program{}, text: map[string]string{}, uses: map[string]map[string]bool{}}
	for _, name := range ruleOrder {
		expr, ok := own[name]
		if !ok {
			if expr, ok = defaults[name]; !ok {
				continue
			}
		}
		prg, uses, err := compileRule(name, expr)
		if err != nil {
			return nil, err
		}
		p.rules[name], p.text[name], p.uses[name] = prg, expr, uses
	}
	return p, nil
}

// parse splits source into rule name → expression.
func parse(source string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(source, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, expr, ok := strings.Cut(line, "=")
		name, expr = strings.TrimSpace(name), strings.TrimSpace(expr)
		if !ok || expr == "" {
			return nil, fmt.Errorf("%w: line %d: want `rule = expression`", ErrCompile, i+1)
		}
		if _, known := ruleTypes[name]; !known {
			return nil, fmt.Errorf("%w: line %d: unknown rule %q (rules: %s)", ErrCompile, i+1, name, strings.Join(ruleOrder, ", "))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: line %d: rule %q defined twice", ErrCompile, i+1, name)
		}
		out[name] = expr
	}
	return out, nil
}

// compileRule compiles one rule and lists the inputs it refers to (from
// the checked AST's references).
func compileRule(name, expr string) (cel.Program, map[string]bool, error) {
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, nil, fmt.Errorf("%w: rule %s: %v", ErrCompile, name, iss.Err())
	}
	if want := ruleTypes[name]; !ast.OutputType().IsExactType(want) {
		return nil, nil, fmt.Errorf("%w: rule %s gives %s, want %s", ErrCompile, name, ast.OutputType(), want)
	}
	est, err := env.EstimateCost(ast, sizes{})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: rule %s: %v", ErrCost, name, err)
	}
	if est.Max > MaxStaticCost {
		bound := fmt.Sprint(est.Max)
		if est.Max == math.MaxUint64 {
			bound = "more than can be counted" // the estimate saturated
		}
		return nil, nil, fmt.Errorf("%w: rule %s may cost %s (cap %d, with lists of %d entries)", ErrCost, name, bound, MaxStaticCost, MaxListLen)
	}
	prg, err := env.Program(ast, cel.CostLimit(MaxActualCost), cel.EvalOptions(cel.OptTrackCost))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: rule %s: %v", ErrCompile, name, err)
	}
	uses := map[string]bool{}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if _, ok := varTypes[ref.Name]; ok {
			uses[ref.Name] = true
		}
	}
	return prg, uses, nil
}

// Uses reports whether rule refers to the input name (e.g. "target"). A
// rule that does not is a function of the other inputs alone: a caller may
// reuse its decision for inputs that differ only in name.
func (p *Policy) Uses(rule, name string) bool {
	u, ok := p.uses[rule]
	return !ok || u[name] // an unknown rule: assume it does
}

// sizes bounds inputs for the static cost estimate.
type sizes struct{}

func (sizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if p := n.Path(); len(p) == 1 {
		if t, ok := varTypes[p[0]]; ok {
			switch {
			case t.IsExactType(cel.ListType(cel.StringType)):
				return &cost.SizeEstimate{Min: 0, Max: MaxListLen}
			case t.IsExactType(cel.StringType):
				return &cost.SizeEstimate{Min: 0, Max: MaxStringLen}
			}
		}
	}
	return nil
}

func (sizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
