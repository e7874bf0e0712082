package resources

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// CustomError reports a malformed custom resource list; Part is the entry
// at fault, as written.
type CustomError struct {
	Part   string
	Reason string
}

func (e *CustomError) Error() string {
	return fmt.Sprintf("resources: custom resource %q: %s", e.Part, e.Reason)
}

// ParseCustom parses a list of custom resources such as
// "ib_port=1,license=0.5". Names are case-sensitive and may not contain
// spaces, '=' or ','; amounts are finite numbers >= 0; a name may appear
// once. Spaces around entries, names and amounts are ignored. An empty or
// all-space string gives an empty map. Errors are *CustomError.
func ParseCustom(s string) (map[string]float64, error) {
	out := map[string]float64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for i, part := range strings.Split(s, ",") {
		entry := strings.TrimSpace(part)
		bad := func(format string, args ...any) error {
			return &CustomError{Part: entry, Reason: fmt.Sprintf(format, args...)}
		}
		if entry == "" {
			return nil, bad("entry %d of %q is empty", i+1, s)
		}
		name, amount, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, bad("want name=amount")
		}
		name, amount = strings.TrimSpace(name), strings.TrimSpace(amount)
		switch {
		case name == "":
			return nil, bad("empty name")
		case strings.ContainsFunc(name, unicode.IsSpace):
			return nil, bad("name %q contains a space", name)
		}
		v, err := strconv.ParseFloat(amount, 64)
		if err != nil {
			return nil, bad("amount %q is not a number", amount)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return nil, bad("amount %q must be a finite number >= 0", amount)
		}
		if _, dup := out[name]; dup {
			return nil, bad("%q appears more than once", name)
		}
		out[name] = v
	}
	return out, nil
}
