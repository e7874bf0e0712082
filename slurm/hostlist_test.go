package slurm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// scontrolHostnames are answers of `scontrol show hostnames EXPR` from
// Slurm 22.05.8 (shared/slurm), which Expand must reproduce.
var scontrolHostnames = []struct {
	expr  string
	hosts string // space-separated
}{
	{"node[001-004,010],gpu-[1-2]", "node001 node002 node003 node004 node010 gpu-1 gpu-2"},
	{"rack[1-2]-node[01-02]", "rack1-node01 rack1-node02 rack2-node01 rack2-node02"},
	{"a[1-2]b[1-3]", "a1b1 a1b2 a1b3 a2b1 a2b2 a2b3"},
	{"a[1-2]b[1-2]c[1-2]", "a1b1c1 a1b1c2 a2b1c1 a2b1c2 a1b2c1 a1b2c2 a2b2c1 a2b2c2"},
	{"a[1-2]b[1-2]c[1-2]d[1-2]", "a1b1c1d1 a1b1c1d2 a2b1c1d1 a2b1c1d2 a1b2c1d1 a1b2c1d2 a2b2c1d1 a2b2c1d2 " +
		"a1b1c2d1 a1b1c2d2 a2b1c2d1 a2b1c2d2 a1b2c2d1 a1b2c2d2 a2b2c2d1 a2b2c2d2"},
	{"a[1-2],b[1-2]c[3-4]", "a1 a2 b1c3 b1c4 b2c3 b2c4"},
	{"a b,c", "a b c"},
	{" a , b ", "a b"},
	{",,a,,", "a"},
	{"", ""},
	{"n[9-11]", "n9 n10 n11"},
	{"n[1-010]", "n1 n2 n3 n4 n5 n6 n7 n8 n9 n10"},
	{"n[010-12]", "n010 n011 n012"},
	{"n[001-1]", "n001"},
	{"n[1]", "n1"},
	{"n[01]", "n01"},
	{"n[1,1]", "n1 n1"},
	{"a,a", "a a"},
	{"n[1-2],n[2-3]", "n1 n2 n2 n3"},
	{"[1-3]", "1 2 3"},
	{"n[18446744073709551615]", "n18446744073709551615"},
}

// scontrolHostlist are answers of `scontrol show hostlist NAMES` from
// Slurm 22.05.8, which Compress must reproduce.
var scontrolHostlist = []struct {
	hosts string // comma-separated
	expr  string
}{
	{"n3,n1,n2", "n[3,1-2]"},
	{"n1,n2,n2,n3", "n[1-2,2-3]"},
	{"n01,n02,n3,n4", "n[01-02,3-4]"},
	{"n1,n01", "n[1,01]"},
	{"n9,n10,n11", "n[9-11]"},
	{"n09,n10,n11", "n[09-11]"},
	{"n099,n100", "n[099-100]"},
	{"rack1-node01,rack1-node02,rack2-node01", "rack1-node[01-02],rack2-node01"},
	{"a,b,a", "a,b,a"},
	{"n1,m1,n2", "n1,m1,n2"},
	{"x,n1,n2", "x,n[1-2]"},
	{"n1,n3,n2", "n[1,3,2]"},
	{"1,2,3", "[1-3]"},
	{"n0,n00,n000", "n[0,00,000]"},
	{"n007,n8", "n[007,8]"},
	{"n8,n007", "n[8,007]"},
	{"n1,n2,x,n3", "n[1-2],x,n3"},
	{"n01,n2", "n[01,2]"},
	{"n1,n02", "n[1,02]"},
}

func fields(s string) []string {
	if s == "" {
		return nil
	}
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

func TestExpandMatchesScontrol(t *testing.T) {
	for _, tc := range scontrolHostnames {
		got, err := Expand(tc.expr)
		if err != nil {
			t.Errorf("Expand(%q): %v", tc.expr, err)
			continue
		}
		if want := fields(tc.hosts); !slices.Equal(got, want) {
			t.Errorf("Expand(%q) = %q, want %q", tc.expr, got, want)
		}
	}
}

func TestCompressMatchesScontrol(t *testing.T) {
	for _, tc := range scontrolHostlist {
		hosts := fields(tc.hosts)
		if got := Compress(hosts); got != tc.expr {
			t.Errorf("Compress(%q) = %q, want %q", hosts, got, tc.expr)
		}
		back, err := Expand(tc.expr)
		if err != nil || !slices.Equal(back, hosts) {
			t.Errorf("Expand(%q) = %q, %v; want %q", tc.expr, back, err, hosts)
		}
	}
}

// Where Expand goes beyond Slurm 22.05, which rejects these.
func TestExpandExtensions(t *testing.T) {
	for _, tc := range []struct{ expr, hosts string }{
		{"n[1-3]-ib", "n1-ib n2-ib n3-ib"},
		{"n[1-2]-ib,m[1-2]", "n1-ib n2-ib m1 m2"},
		{"rack[1-2]-n[1-2].cluster", "rack1-n1.cluster rack1-n2.cluster rack2-n1.cluster rack2-n2.cluster"},
		{"n[ 1 - 2 , 4 ]", "n1 n2 n4"},
		{"n[1-2,\t3]\n m[7]", "n1 n2 n3 m7"},
	} {
		got, err := Expand(tc.expr)
		if err != nil {
			t.Errorf("Expand(%q): %v", tc.expr, err)
			continue
		}
		if want := fields(tc.hosts); !slices.Equal(got, want) {
			t.Errorf("Expand(%q) = %q, want %q", tc.expr, got, want)
		}
	}
	if got, want := Compress([]string{"n1-ib", "n2-ib", "n3-ib", "m1"}), "n[1-3]-ib,m1"; got != want {
		t.Errorf("Compress with suffix = %q, want %q", got, want)
	}
}

func TestExpandErrors(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		offset  int
		problem string // a substring of the error
	}{
		{"n[5-2]", 2, `range "5-2" runs backwards`},
		{"n[1-2", 1, "'[' is never closed"},
		{"a,n[1-2", 3, "'[' is never closed"},
		{"n1]", 2, "']' without a matching '['"},
		{"n[1-2]]", 6, "']' without a matching '['"},
		{"n[[1-2]]", 2, "brackets do not nest"},
		{"n[]", 2, "empty range"},
		{"n[1,]", 4, "empty range"},
		{"n[,1]", 2, "empty range"},
		{"n[1,,2]", 4, "empty range"},
		{"n[a-b]", 2, `"a" is not a number`},
		{"n[1-x]", 4, `"x" is not a number`},
		{"n[0x1]", 3, `"0x1" is not a number`},
		{"n[+1]", 2, `"+1" is not a number`},
		{"n[-2]", 2, "missing number"},
		{"n[1-]", 4, "missing number"},
		{"n[1--2]", 4, `"-2" is not a number`},
		{"n[1-2-3]", 5, `"2-3" is not a number`},
		{"n[99999999999999999999]", 2, "too large"},
		{"x[0-999999]", 2, ""}, // exactly MaxHosts: fine
		{"x[0-1000000]", 2, "more than 1000000 hosts"},
		{"x[0-18446744073709551615]", 2, "more than 1000000 hosts"},
		{"a[0-999],b[0-999]c[0-999]", 9, "more than 1000000 hosts"},
		{"a[0-999]b[0-999]c[0-1]", 0, "more than 1000000 hosts"},
		{"x[0-500000],y[0-500000]", 12, "more than 1000000 hosts"},
		{"x[0-600000,0-600000]", 11, "more than 1000000 hosts"},
	} {
		_, err := Expand(tc.expr)
		if tc.problem == "" {
			if err != nil {
				t.Errorf("Expand(%q): %v", tc.expr, err)
			}
			continue
		}
		var he *HostlistError
		if !errors.As(err, &he) || !errors.Is(err, ErrBadHostlist) {
			t.Errorf("Expand(%q) error = %v, want a *HostlistError", tc.expr, err)
			continue
		}
		if he.Offset != tc.offset || !strings.Contains(err.Error(), tc.problem) {
			t.Errorf("Expand(%q) error = %v (offset %d), want offset %d and %q",
				tc.expr, err, he.Offset, tc.offset, tc.problem)
		}
	}
}

func TestExpandErrorMessage(t *testing.T) {
	_, err := Expand("node[5-2]")
	want := `slurm: bad hostlist "node[5-2]" at byte 5: range "5-2" runs backwards (5 > 2)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	long := strings.Repeat("a", 100) + "[1-" + strings.Repeat("b", 100)
	_, err = Expand(long)
	if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "...") {
		t.Errorf("long hostlist error should be shortened, got %v", err)
	}
}

func TestExpandTooManyBytes(t *testing.T) {
	_, err := Expand(strings.Repeat("n", 1000) + "[1-999999]")
	if !errors.Is(err, ErrBadHostlist) || !strings.Contains(err.Error(), "MiB") {
		t.Errorf("got %v, want an error about the size of the names", err)
	}
}

func TestCompressEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		hosts []string
		want  string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"n1"}, "n1"},
		{[]string{"n18446744073709551614", "n18446744073709551615"}, "n[18446744073709551614-18446744073709551615]"},
		{[]string{"n18446744073709551615", "n0"}, "n[18446744073709551615,0]"},
		{[]string{"n99999999999999999999", "n99999999999999999998"}, "n99999999999999999999,n99999999999999999998"},
		{[]string{"r1n1", "r1n2", "r2n1"}, "r1n[1-2],r2n1"},
		{[]string{"n1x", "n2y"}, "n1x,n2y"},
	} {
		if got := Compress(tc.hosts); got != tc.want {
			t.Errorf("Compress(%q) = %q, want %q", tc.hosts, got, tc.want)
		}
	}
}

// randomHosts makes n plausible host names from a few families, with
// random zero padding, numbers and suffixes.
func randomHosts(r *rand.Rand, n int) []string {
	prefixes := []string{"", "n", "node", "gpu-", "rack1-node", "a1b", "x.y"}
	suffixes := []string{"", "", "-ib", ".cluster"}
	hosts := make([]string, n)
	for i := range hosts {
		switch r.IntN(8) {
		case 0:
			hosts[i] = []string{"login", "head", "mgmt"}[r.IntN(3)]
		default:
			width := r.IntN(5)
			num := r.Uint64N(30)
			if r.IntN(20) == 0 {
				num = ^uint64(0) - r.Uint64N(3)
			}
			hosts[i] = prefixes[r.IntN(len(prefixes))] + pad(num, width) + suffixes[r.IntN(len(suffixes))]
		}
	}
	return hosts
}

func TestCompressRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 3000 {
		hosts := randomHosts(r, r.IntN(40))
		if iter%2 == 0 { // sorted and unique
			slices.Sort(hosts)
			hosts = slices.Compact(hosts)
		}
		expr := Compress(hosts)
		back, err := Expand(expr)
		if err != nil {
			t.Fatalf("Expand(Compress(%q)) = Expand(%q): %v", hosts, expr, err)
		}
		if !slices.Equal(back, hosts) && !(len(back) == 0 && len(hosts) == 0) {
			t.Fatalf("Expand(Compress(%q)) = Expand(%q) = %q", hosts, expr, back)
		}
	}
}

func TestCompressIsCompact(t *testing.T) {
	var hosts []string
	for i := 1; i <= 128; i++ {
		hosts = append(hosts, fmt.Sprintf("node%04d", i))
	}
	if got, want := Compress(hosts), "node[0001-0128]"; got != want {
		t.Errorf("Compress = %q, want %q", got, want)
	}
}

func FuzzExpand(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzExpand.
	for _, tc := range scontrolHostnames {
		f.Add(tc.expr)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hosts, err := Expand(s)
		if err != nil {
			var he *HostlistError
			if !errors.As(err, &he) || !errors.Is(err, ErrBadHostlist) {
				t.Fatalf("Expand(%q) error %v is not a *HostlistError", s, err)
			}
			if he.Offset < 0 || he.Offset > len(s) {
				t.Fatalf("Expand(%q) error offset %d out of range", s, he.Offset)
			}
			return
		}
		expr := Compress(hosts)
		back, err := Expand(expr)
		if err != nil {
			t.Fatalf("Expand(%q) = %q; Compress = %q does not expand: %v", s, hosts, expr, err)
		}
		if !slices.Equal(back, hosts) {
			t.Fatalf("Expand(%q) = %q; Compress = %q expands to %q", s, hosts, expr, back)
		}
		if again := Compress(back); again != expr {
			t.Fatalf("Compress is not stable: %q then %q", expr, again)
		}
	})
}
