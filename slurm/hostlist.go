package slurm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxHosts is the most host names Expand produces; a longer expansion is an
// error rather than a large allocation. Real clusters are far smaller.
const MaxHosts = 1_000_000

// maxExpandBytes caps the total length of the names Expand produces, so that
// a long name repeated MaxHosts times cannot exhaust memory either.
const maxExpandBytes = 256 << 20

// ErrBadHostlist is wrapped by every error Expand returns.
var ErrBadHostlist = errors.New("slurm: bad hostlist")

// HostlistError says what is wrong with a hostlist expression, and where.
type HostlistError struct {
	Hostlist string // the whole expression given to Expand
	Offset   int    // byte offset of the problem in Hostlist
	Problem  string // what is wrong, e.g. `range "5-2" runs backwards`
}

func (e *HostlistError) Error() string {
	return fmt.Sprintf("slurm: bad hostlist %s at byte %d: %s",
		excerpt(e.Hostlist, e.Offset), e.Offset, e.Problem)
}

// Unwrap makes errors.Is(err, ErrBadHostlist) true.
func (e *HostlistError) Unwrap() error { return ErrBadHostlist }

// excerpt quotes s, or for a long s the part around offset.
func excerpt(s string, offset int) string {
	const width = 40
	if len(s) <= 2*width {
		return strconv.Quote(s)
	}
	lo, hi := max(offset-width, 0), min(offset+width, len(s))
	q := strconv.Quote(s[lo:hi])
	if lo > 0 {
		q = "..." + q
	}
	if hi < len(s) {
		q += "..."
	}
	return q
}

// isSep reports whether c separates host names outside brackets. Slurm
// splits on commas, spaces and tabs; other ASCII white space is taken too.
func isSep(c byte) bool {
	switch c {
	case ',', ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// isSpace reports whether c is white space, which Expand ignores around
// the numbers inside brackets.
func isSpace(c byte) bool { return c != ',' && isSep(c) }

// Expand returns the host names a Slurm hostlist expression stands for, in
// the order `scontrol show hostnames` prints them:
//
//	node[001-003,010],gpu-[1-2]  →  node001 node002 node003 node010 gpu-1 gpu-2
//
// Names are separated by commas or white space outside brackets. A bracket
// holds numbers and ranges separated by commas, with white space allowed
// around them; a range lo-hi counts up from lo to hi, and every number it
// produces is zero-padded to the width of lo as written (n[08-10] gives
// n08 n09 n10; n[8-10] gives n8 n9 n10). A name may hold several brackets
// and text after them (rack[1-2]-node[01-02], n[1-3]-ib); Slurm 22.05
// rejects text after the last bracket, Expand takes it as a suffix.
//
// With several brackets in one name Expand enumerates them as Slurm does:
// for two, the first varies slowest (rack1-node01 rack1-node02
// rack2-node01 ...); for more, Slurm's loops nest from the next-to-last
// bracket outwards to the first, with the last bracket innermost.
//
// Duplicates are kept. An empty or all-separator expression gives no hosts
// and no error. Errors are *HostlistError (wrapping ErrBadHostlist) and name
// the byte offset of the problem: an unbalanced or nested bracket, an empty
// element, a number that is not a decimal integer or does not fit in 64
// bits, a range that runs backwards, or an expansion to more than MaxHosts
// hosts.
func Expand(hostlist string) ([]string, error) {
	x := expander{s: hostlist}
	for i := 0; i < len(hostlist); {
		if isSep(hostlist[i]) {
			i++
			continue
		}
		start, open := i, -1
		for ; i < len(hostlist) && (open >= 0 || !isSep(hostlist[i])); i++ {
			switch hostlist[i] {
			case '[':
				if open >= 0 {
					return nil, x.fail(i, "'[' inside brackets (brackets do not nest)")
				}
				open = i
			case ']':
				if open < 0 {
					return nil, x.fail(i, "']' without a matching '['")
				}
				open = -1
			}
		}
		if open >= 0 {
			return nil, x.fail(open, "'[' is never closed")
		}
		if err := x.name(start, i); err != nil {
			return nil, err
		}
	}
	return x.hosts, nil
}

// expander accumulates the hosts of one Expand call.
type expander struct {
	s     string
	hosts []string
	bytes int
}

func (x *expander) fail(offset int, format string, args ...any) error {
	return &HostlistError{Hostlist: x.s, Offset: offset, Problem: fmt.Sprintf(format, args...)}
}

// name expands the single name x.s[start:end], whose brackets are balanced
// and not nested, and appends its hosts.
func (x *expander) name(start, end int) error {
	// A name alternates literal text and bracket groups:
	// lits[0] group[0] lits[1] group[1] ... lits[k].
	var lits []string
	var groups [][]string
	lit := start
	for i := start; i < end; i++ {
		if x.s[i] != '[' {
			continue
		}
		close := i + strings.IndexByte(x.s[i:end], ']')
		lits = append(lits, x.s[lit:i])
		g, err := x.group(i+1, close)
		if err != nil {
			return err
		}
		groups = append(groups, g)
		lit, i = close+1, close
	}
	lits = append(lits, x.s[lit:end])
	if len(groups) == 0 {
		return x.add(start, lits[0])
	}

	// Check the size before building anything.
	n, longest := 1, 0
	for _, l := range lits {
		longest += len(l)
	}
	for _, g := range groups {
		n *= len(g) // len(g) <= MaxHosts and n <= MaxHosts: no overflow
		if len(x.hosts)+n > MaxHosts {
			return x.fail(start, "expands to more than %d hosts", MaxHosts)
		}
		w := 0
		for _, v := range g {
			w = max(w, len(v))
		}
		longest += w
	}
	if x.bytes+n*longest > maxExpandBytes {
		return x.fail(start, "expands to more than %d MiB of host names", maxExpandBytes>>20)
	}

	// Slurm's nesting, outermost first: groups k-2, k-3, ..., 0, then k-1.
	k := len(groups)
	order := make([]int, 0, k)
	for g := k - 2; g >= 0; g-- {
		order = append(order, g)
	}
	order = append(order, k-1)

	idx := make([]int, k)
	var b strings.Builder
	for {
		b.Reset()
		for g := range groups {
			b.WriteString(lits[g])
			b.WriteString(groups[g][idx[g]])
		}
		b.WriteString(lits[k])
		if err := x.add(start, b.String()); err != nil {
			return err
		}
		// Advance the odometer, innermost (last in order) fastest.
		j := len(order) - 1
		for ; j >= 0; j-- {
			g := order[j]
			if idx[g]++; idx[g] < len(groups[g]) {
				break
			}
			idx[g] = 0
		}
		if j < 0 {
			return nil
		}
	}
}

func (x *expander) add(offset int, host string) error {
	if len(x.hosts) >= MaxHosts {
		return x.fail(offset, "expands to more than %d hosts", MaxHosts)
	}
	x.hosts = append(x.hosts, host)
	x.bytes += len(host)
	return nil
}

// group parses the bracket contents x.s[start:end] into the numbers it
// stands for, formatted with their padding.
func (x *expander) group(start, end int) ([]string, error) {
	var out []string
	for elem := start; ; {
		comma := strings.IndexByte(x.s[elem:end], ',')
		stop := end
		if comma >= 0 {
			stop = elem + comma
		}
		var err error
		if out, err = x.element(elem, stop, out); err != nil {
			return nil, err
		}
		if comma < 0 {
			return out, nil
		}
		elem = stop + 1
	}
}

// element parses one number or range, x.s[start:end], and appends its
// numbers to out.
func (x *expander) element(start, end int, out []string) ([]string, error) {
	for start < end && isSpace(x.s[start]) {
		start++
	}
	for end > start && isSpace(x.s[end-1]) {
		end--
	}
	if start == end {
		return nil, x.fail(start, "empty range (nothing between '[', ',' and ']')")
	}
	loEnd := end
	if dash := strings.IndexByte(x.s[start:end], '-'); dash >= 0 {
		loEnd = start + dash
	}
	lo, width, err := x.number(start, loEnd)
	if err != nil {
		return nil, err
	}
	hi := lo
	if loEnd < end {
		if hi, _, err = x.number(loEnd+1, end); err != nil {
			return nil, err
		}
		if hi < lo {
			return nil, x.fail(start, "range %q runs backwards (%d > %d)", x.s[start:end], lo, hi)
		}
	}
	if hi-lo >= MaxHosts || len(out)+int(hi-lo) >= MaxHosts {
		return nil, x.fail(start, "range %q expands to more than %d hosts", x.s[start:end], MaxHosts)
	}
	for v := lo; ; v++ {
		out = append(out, pad(v, width))
		if v == hi {
			return out, nil
		}
	}
}

// number parses the decimal number x.s[start:end], ignoring white space
// around it, and returns it with its written width.
func (x *expander) number(start, end int) (uint64, int, error) {
	for start < end && isSpace(x.s[start]) {
		start++
	}
	for end > start && isSpace(x.s[end-1]) {
		end--
	}
	if start == end {
		return 0, 0, x.fail(start, "missing number in range")
	}
	digits := x.s[start:end]
	for i := 0; i < len(digits); i++ {
		if c := digits[i]; c < '0' || c > '9' {
			return 0, 0, x.fail(start+i, "%q is not a number (want decimal digits, or lo-hi)", digits)
		}
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, 0, x.fail(start, "number %s is too large", digits)
	}
	return v, len(digits), nil
}

// pad formats v in decimal, zero-padded to width digits.
func pad(v uint64, width int) string {
	s := strconv.FormatUint(v, 10)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// Compress returns a hostlist expression for hosts, the inverse of Expand:
// Expand(Compress(hosts)) gives hosts back, in the same order and with any
// duplicates, for any names Expand can produce (no brackets, commas or
// white space; names with those, and empty names, are written as they are
// and do not survive the round trip).
//
// Like `scontrol show hostlist`, Compress keeps the order it is given and
// brackets each run of consecutive hosts whose names differ only in their
// last number, merging consecutive numbers of the same zero padding into
// ranges:
//
//	node001 node002 node003 node010 gpu-1 gpu-2  →  node[001-003,010],gpu-[1-2]
//
// Sort the hosts first for the shortest result. Unlike Slurm 22.05, hosts
// that share text after their last number are bracketed too (n1-ib n2-ib
// gives n[1-2]-ib), which Slurm 22.05 itself does not accept.
func Compress(hosts []string) string {
	var b strings.Builder
	for i := 0; i < len(hosts); {
		if i > 0 {
			b.WriteByte(',')
		}
		first, numbered := splitHost(hosts[i])
		j := i + 1
		for ; numbered && j < len(hosts); j++ {
			h, ok := splitHost(hosts[j])
			if !ok || h.prefix != first.prefix || h.suffix != first.suffix {
				break
			}
		}
		if j == i+1 {
			b.WriteString(hosts[i])
			i = j
			continue
		}
		b.WriteString(first.prefix)
		b.WriteByte('[')
		for k := i; k < j; {
			if k > i {
				b.WriteByte(',')
			}
			lo, _ := splitHost(hosts[k])
			hi := lo
			for k++; k < j; k++ {
				h, _ := splitHost(hosts[k])
				if hi.num == ^uint64(0) || h.num != hi.num+1 || pad(h.num, len(lo.digits)) != h.digits {
					break
				}
				hi = h
			}
			b.WriteString(lo.digits)
			if hi.num != lo.num {
				b.WriteByte('-')
				b.WriteString(hi.digits)
			}
		}
		b.WriteByte(']')
		b.WriteString(first.suffix)
		i = j
	}
	return b.String()
}

// hostParts is a host name split around its last number.
type hostParts struct {
	prefix, digits, suffix string
	num                    uint64
}

// splitHost splits host around its last run of decimal digits. It reports
// false if there is none, if the number does not fit in 64 bits, or if the
// name holds a character that Expand would not give back as it is.
func splitHost(host string) (hostParts, bool) {
	end := len(host)
	for end > 0 && (host[end-1] < '0' || host[end-1] > '9') {
		end--
	}
	start := end
	for start > 0 && host[start-1] >= '0' && host[start-1] <= '9' {
		start--
	}
	if start == end || strings.ContainsAny(host, "[], \t\n\r\v\f") {
		return hostParts{}, false
	}
	num, err := strconv.ParseUint(host[start:end], 10, 64)
	if err != nil {
		return hostParts{}, false
	}
	return hostParts{prefix: host[:start], digits: host[start:end], suffix: host[end:], num: num}, true
}
