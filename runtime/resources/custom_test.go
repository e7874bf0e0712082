package resources

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseCustom(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]float64
	}{
		{"", map[string]float64{}},
		{"  ", map[string]float64{}},
		{"name=1.5,other=2", map[string]float64{"name": 1.5, "other": 2}},
		{" ib_port = 1 , license=0 ", map[string]float64{"ib_port": 1, "license": 0}},
		{"node:10.0.0.1=1", map[string]float64{"node:10.0.0.1": 1}},
		{"big=1e3", map[string]float64{"big": 1000}},
	} {
		got, err := ParseCustom(tc.in)
		if err != nil {
			t.Errorf("ParseCustom(%q): %v", tc.in, err)
			continue
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("ParseCustom(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseCustomErrors(t *testing.T) {
	for _, tc := range []struct {
		in, part, reason string
	}{
		{"a=1,b", "b", "want name=amount"},
		{"=2", "=2", "empty name"},
		{"my res=2", "my res=2", "contains a space"},
		{"a=x", "a=x", `amount "x" is not a number`},
		{"a=", "a=", `amount "" is not a number`},
		{"a=1=2", "a=1=2", "not a number"},
		{"a=-1", "a=-1", ">= 0"},
		{"a=NaN", "a=NaN", "finite"},
		{"a=Inf", "a=Inf", "finite"},
		{"a=1,a=2", "a=2", `"a" appears more than once`},
		{"a=1,,b=2", "", "entry 2"},
		{"a=1,", "", "entry 2"},
	} {
		got, err := ParseCustom(tc.in)
		var ce *CustomError
		if !errors.As(err, &ce) {
			t.Errorf("ParseCustom(%q) = %v, %v; want a *CustomError", tc.in, got, err)
			continue
		}
		if got != nil {
			t.Errorf("ParseCustom(%q) returned %v with its error", tc.in, got)
		}
		if ce.Part != tc.part || !strings.Contains(ce.Reason, tc.reason) {
			t.Errorf("ParseCustom(%q): Part %q, Reason %q; want Part %q, Reason containing %q",
				tc.in, ce.Part, ce.Reason, tc.part, tc.reason)
		}
		if !strings.HasPrefix(err.Error(), "resources: custom resource ") {
			t.Errorf("ParseCustom(%q): error %q lacks the package prefix", tc.in, err)
		}
	}
}
