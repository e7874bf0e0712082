package codec

import (
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode for types on every path:
// each call must return a value or an error wrapping ErrType or
// ErrCorrupt, and never panic. The seeds in testdata/fuzz/FuzzDecode are
// valid objects of these types, so mutations reach the payload decoders.
func FuzzDecode(f *testing.F) {
	for _, e := range fuzzSeeds() {
		f.Add(e.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(err error) {
			if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrType) {
				t.Fatalf("error wraps neither ErrCorrupt nor ErrType: %v", err)
			}
		}
		TypeName(data)
		for _, view := range []bool{false, true} {
			_, err := Decode[int](data, view)
			check(err)
			_, err = Decode[bool](data, view)
			check(err)
			_, err = Decode[string](data, view)
			check(err)
			_, err = Decode[[]byte](data, view)
			check(err)
			_, err = Decode[[]float64](data, view)
			check(err)
			_, err = Decode[[]int](data, view)
			check(err)
			_, err = Decode[small](data, view)
			check(err)
			_, err = Decode[map[string]int](data, view)
			check(err)
			_, err = Decode[holder](data, view)
			check(err)
			_, err = Decode[any](data, view)
			check(err)
		}
	})
}

func fuzzSeeds() []Encoded {
	enc := func(e Encoded, err error) Encoded {
		if err != nil {
			panic(err)
		}
		return e
	}
	x := 3
	return []Encoded{
		enc(Encode(-7)),
		enc(Encode(true)),
		enc(Encode("héllo")),
		enc(Encode([]byte{1, 2, 3})),
		enc(Encode([]float64{1.5, -2})),
		enc(Encode([]int(nil))),
		enc(Encode(small{ID: 1, Name: "a", Tags: []string{"t"}, OK: true})),
		enc(Encode(map[string]int{"a": 1, "b": 2})),
		enc(Encode(holder{R: ref{owner: 1}, Rs: []ref{{}}, M: map[string]ref{"k": {}}, PI: &x, List: &node{1, nil}})),
		enc(Encode[any]([]any{1, "x", map[string]any{"y": 2.5}})),
	}
}
