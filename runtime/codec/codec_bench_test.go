package codec

import (
	"bytes"
	"encoding/gob"
	"reflect"
	"strconv"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// Run with
//
//	go test -run='^$' -bench=. -benchmem ./runtime/codec/
//
// The numbers in doc.go come from these benchmarks, plus msgpack
// (github.com/vmihailenco/msgpack/v5 v5.4.1, Marshal/Unmarshal) measured
// the same way in a scratch module so that it is not a dependency here.

func BenchmarkEncodeInt(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Encode(i); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeIntBytes(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e, _ := Encode(i)
		_ = e.Bytes()
	}
}

func BenchmarkDecodeInt(b *testing.B) {
	data := mustBytes(Encode(12345))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode[int](data, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeString(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		e, _ := Encode("a short task result")
		_ = e.Bytes()
	}
}

const bigLen = 1 << 20

// BenchmarkEncodeFloat64s1M: Encode aliases the slice; WriteTo does the
// one copy into (in raygo) the shared-memory file.
func BenchmarkEncodeFloat64s1M(b *testing.B) {
	v := make([]float64, bigLen)
	dst := make([]byte, 8*bigLen+64)
	b.SetBytes(8 * bigLen)
	b.ReportAllocs()
	for b.Loop() {
		e, err := Encode(v)
		if err != nil {
			b.Fatal(err)
		}
		e.WriteTo(dst)
	}
}

func BenchmarkDecodeFloat64s1M(b *testing.B) {
	data := alignedCopy(mustBytes(Encode(make([]float64, bigLen))), 0)
	for _, view := range []bool{false, true} {
		b.Run("view="+strconv.FormatBool(view), func(b *testing.B) {
			b.SetBytes(8 * bigLen)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode[[]float64](data, view); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Serializer comparison: a small struct, a map[string]int of 100 entries,
// and a slice of 10k structs.

type item struct {
	A int64
	B float64
	C string
}

func benchSmall() small {
	return small{ID: 42, Name: "hello world", Score: 3.5, Tags: []string{"a", "bb", "ccc"}, OK: true}
}

func benchMap() map[string]int {
	m := make(map[string]int, 100)
	for i := range 100 {
		m["key"+strconv.Itoa(i)] = 7 * i
	}
	return m
}

func benchItems() []item {
	s := make([]item, 10000)
	for i := range s {
		s[i] = item{int64(i), 1.5 * float64(i), "item" + strconv.Itoa(i)}
	}
	return s
}

type serializer struct {
	name string
	enc  func(v any) ([]byte, error)
	dec  func(data []byte, ptr any) error
}

var serializers = []serializer{
	// gob with a fresh encoder per value: every object is standalone, so
	// each one carries its type description.
	{"gob", func(v any) ([]byte, error) {
		var buf bytes.Buffer
		err := gob.NewEncoder(&buf).Encode(v)
		return buf.Bytes(), err
	}, func(data []byte, ptr any) error {
		return gob.NewDecoder(bytes.NewReader(data)).Decode(ptr)
	}},
	{"cbor-default", cbor.Marshal, cbor.Unmarshal},
	// cbor with this package's options, without the header.
	{"cbor-codec", encMode.Marshal, decMode.Unmarshal},
}

func benchSerializers[T any](b *testing.B, v T) {
	for _, s := range serializers {
		data, err := s.enc(v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s.name+"/enc", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.enc(v)
			}
			b.ReportMetric(float64(len(data)), "bytes")
		})
		b.Run(s.name+"/dec", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var out T
				if err := s.dec(data, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	data := mustBytes(Encode(v))
	b.Run("codec/enc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Encode(v)
		}
		b.ReportMetric(float64(len(data)), "bytes")
	})
	b.Run("codec/dec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode[T](data, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSerializerSmallStruct(b *testing.B) { benchSerializers(b, benchSmall()) }
func BenchmarkSerializerMap100(b *testing.B)      { benchSerializers(b, benchMap()) }
func BenchmarkSerializerStructs10k(b *testing.B)  { benchSerializers(b, benchItems()) }

// TestSerializersAgree checks that the benchmarked values round-trip
// through every serializer, so the comparison is of working encodings.
func TestSerializersAgree(t *testing.T) {
	for _, v := range []any{benchSmall(), benchMap(), benchItems()} {
		for _, s := range serializers {
			data, err := s.enc(v)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			p := reflect.New(reflect.TypeOf(v))
			if err := s.dec(data, p.Interface()); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if !reflect.DeepEqual(p.Elem().Interface(), v) {
				t.Errorf("%s: %T does not round-trip", s.name, v)
			}
		}
	}
}
