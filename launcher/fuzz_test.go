package launcher

import (
	"strings"
	"testing"
)

// Files raygo-launch reads from a shared filesystem must never crash it.

func FuzzParseHeadInfo(f *testing.F) {
	f.Add([]byte(`{"addr":"127.0.0.1:4000","secret":"00112233445566778899aabbccddeeff","version":"0.1.0+wire2","host":"n1","pid":42,"cluster":"ab12"}`))
	f.Add([]byte(`{"addr":"[::1]:1","secret":"zz"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseHeadInfo(b)
		if err == nil {
			if _, err := info.SecretBytes(); err != nil {
				t.Fatalf("accepted a file whose secret does not decode: %v", err)
			}
		}
	})
}

func FuzzParseNodesFile(f *testing.F) {
	f.Add([]byte("node1\nnode2 # the second\n\n# comment\nnode3\n"))
	f.Add([]byte("a b\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		hosts, err := ParseNodesFile(b)
		if err != nil {
			return
		}
		for _, h := range hosts {
			if h == "" || strings.ContainsAny(h, " \t#\n") {
				t.Fatalf("accepted host %q", h)
			}
		}
	})
}
