package main

import (
	"strings"
	"testing"
	"time"

	tokenimv1 "github.com/tokenim/tokenim/gen/tokenim/v1"
)

// status tells an idle chain from a stalled one, and says why it stalls.
func TestLiveness(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	for _, tc := range []struct {
		name string
		st   *tokenimv1.StatusResponse
		ok   bool
		say  []string
	}{
		{"idle for an hour", &tokenimv1.StatusResponse{LastBlockMs: ago(time.Hour), ValidatorPower: 40, ReachablePower: 40}, true, []string{"ok"}},
		{"busy", &tokenimv1.StatusResponse{LastBlockMs: ago(time.Second), MempoolTxs: 5, ValidatorPower: 40, ReachablePower: 30}, true, []string{"ok"}},
		{"stalled, half the power away", &tokenimv1.StatusResponse{LastBlockMs: ago(42 * time.Second), MempoolTxs: 3, ValidatorPower: 40, ReachablePower: 20},
			false, []string{"STALLED", "42s", "3 transactions", "20 of the validators' 40", "more than 2/3"}},
		{"stalled, every validator reached", &tokenimv1.StatusResponse{LastBlockMs: ago(time.Minute), MempoolTxs: 1, ValidatorPower: 40, ReachablePower: 40},
			false, []string{"STALLED"}},
		{"idle, but two thirds exactly", &tokenimv1.StatusResponse{LastBlockMs: ago(time.Hour), ValidatorPower: 30, ReachablePower: 20}, false, []string{"cannot make blocks"}},
		{"catching up", &tokenimv1.StatusResponse{CatchingUp: true, ValidatorPower: 40, ReachablePower: 10}, false, []string{"catching up"}},
	} {
		v, ok := liveness(tc.st, now)
		if ok != tc.ok {
			t.Errorf("%s: ok %v (%q)", tc.name, ok, v)
		}
		for _, w := range tc.say {
			if !strings.Contains(v, w) {
				t.Errorf("%s: %q does not say %q", tc.name, v, w)
			}
		}
		if tc.name == "stalled, every validator reached" && strings.Contains(v, "more than 2/3") {
			t.Errorf("%s: blames the validators' power: %q", tc.name, v)
		}
	}
}

func TestParseSpan(t *testing.T) {
	for in, want := range map[string]time.Duration{"off": 0, "0": 0, "30m": 30 * time.Minute, "1h30m": 90 * time.Minute, "1d": 24 * time.Hour, "2w": 14 * 24 * time.Hour} {
		if got, err := parseSpan(in); err != nil || got != want {
			t.Errorf("parseSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "-1h", "0d", "500ms", "1y"} {
		if _, err := parseSpan(bad); err == nil {
			t.Errorf("parseSpan(%q) accepted", bad)
		}
	}
}
