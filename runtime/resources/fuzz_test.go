package resources

import (
	"math"
	"testing"
)

func FuzzParseCustom(f *testing.F) {
	for _, s := range []string{"license=2,fpga=1", "a=1.5", "", "x=", "=1", "a=1,a=2", "a=NaN", "a=-1", "a=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseCustom(s)
		if err != nil {
			return
		}
		for k, v := range m {
			if k == "" || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("ParseCustom(%q) accepted %q=%v", s, k, v)
			}
		}
	})
}
