package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// ref stands in for raygo's Ref: a struct with unexported fields that
// encodes itself with encoding.BinaryMarshaler.
type ref struct {
	id    [20]byte
	owner uint64
}

func (r ref) MarshalBinary() ([]byte, error) {
	b := make([]byte, 28)
	copy(b, r.id[:])
	binary.LittleEndian.PutUint64(b[20:], r.owner)
	return b, nil
}

func (r *ref) UnmarshalBinary(b []byte) error {
	if len(b) != 28 {
		return errors.New("ref: want 28 bytes")
	}
	copy(r.id[:], b)
	r.owner = binary.LittleEndian.Uint64(b[20:])
	return nil
}

// optRef, like raygo's Ref, encodes its zero value as no bytes at all.
type optRef struct{ id *uint64 }

func (r optRef) MarshalBinary() ([]byte, error) {
	if r.id == nil {
		return nil, nil
	}
	return binary.LittleEndian.AppendUint64(nil, *r.id), nil
}

func (r *optRef) UnmarshalBinary(b []byte) error {
	switch len(b) {
	case 0:
		r.id = nil
	case 8:
		id := binary.LittleEndian.Uint64(b)
		r.id = &id
	default:
		return errors.New("optRef: want 0 or 8 bytes")
	}
	return nil
}

type small struct {
	ID    int64
	Name  string
	Score float64
	Tags  []string
	OK    bool
}

type node struct {
	Val  int
	Next *node
}

type holder struct {
	R     ref
	P     *ref
	Nil   *ref
	Rs    []ref
	M     map[string]ref
	PM    map[int]*ref
	NS    [][]int
	Empty []int
	PI    *int
	List  *node
	When  time.Time
	Inner small
	Any   any
	Bytes []byte
}

// Named raw types take the raw path; a named slice with its own
// BinaryMarshaler does not.
type (
	vec      []float64
	celsius  float32
	label    string
	custom   []int32
	enumList []enum
	enum     uint8
)

// custom encodes as 0xc5 and then one byte per element.
func (c custom) MarshalBinary() ([]byte, error) {
	b := []byte{0xc5}
	for _, x := range c {
		b = append(b, byte(x))
	}
	return b, nil
}

func (c *custom) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != 0xc5 {
		return errors.New("custom: no 0xc5")
	}
	*c = make(custom, len(b)-1)
	for i, x := range b[1:] {
		(*c)[i] = int32(x)
	}
	return nil
}

func (e enum) MarshalBinary() ([]byte, error) { return []byte{byte(e) + 100}, nil }
func (e *enum) UnmarshalBinary(b []byte) error {
	if len(b) != 1 {
		return errors.New("enum: want 1 byte")
	}
	*e = enum(b[0] - 100)
	return nil
}

// alignedCopy returns b copied to a 16-byte aligned buffer, plus off extra
// leading bytes when off > 0 (to misalign it on purpose).
func alignedCopy(b []byte, off int) []byte {
	buf := make([]uint64, (len(b)+off)/8+2) // 8-byte aligned at least
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)*8)
	skip := (16 - int(uintptr(unsafe.Pointer(&raw[0]))%16)) % 16
	out := raw[skip+off : skip+off+len(b)]
	copy(out, b)
	return out
}

func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	e, err := Encode(v)
	if err != nil {
		t.Fatalf("Encode(%T): %v", v, err)
	}
	b := e.Bytes()
	if len(b) != e.Len() {
		t.Fatalf("%T: Bytes() has %d bytes, Len() %d", v, len(b), e.Len())
	}
	w := make([]byte, e.Len()+7)
	e.WriteTo(w)
	if !bytes.Equal(w[:e.Len()], b) {
		t.Fatalf("%T: WriteTo and Bytes differ", v)
	}
	for _, view := range []bool{false, true} {
		for _, off := range []int{0, 1, 4} {
			got, err := Decode[T](alignedCopy(b, off), view)
			if err != nil {
				t.Fatalf("Decode[%T](view=%v, off=%d): %v", v, view, off, err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("Decode[%T](view=%v, off=%d) = %#v, want %#v", v, view, off, got, v)
			}
		}
	}
	got, _ := Decode[T](b, false)
	return got
}

func TestRoundTripRaw(t *testing.T) {
	// Odd lengths, empty and nil for every raw slice type.
	for _, n := range []int{0, 1, 3, 7, 1001} {
		seq := func(i int) int64 { return int64(i*2654435761) ^ -int64(i) }
		b := make([]byte, n)
		f32, f64 := make([]float32, n), make([]float64, n)
		i8, i16, i32, i64 := make([]int8, n), make([]int16, n), make([]int32, n), make([]int64, n)
		u16, u32, u64 := make([]uint16, n), make([]uint32, n), make([]uint64, n)
		in, un := make([]int, n), make([]uint, n)
		c64, c128 := make([]complex64, n), make([]complex128, n)
		for i := range n {
			s := seq(i)
			b[i], i8[i], i16[i], i32[i], i64[i] = byte(s), int8(s), int16(s), int32(s), s
			u16[i], u32[i], u64[i], in[i], un[i] = uint16(s), uint32(s), uint64(s), int(s), uint(s)
			f32[i], f64[i] = float32(s)/3, float64(s)/7
			c64[i], c128[i] = complex(f32[i], -f32[i]), complex(f64[i], 1)
		}
		roundTrip(t, b)
		roundTrip(t, f32)
		roundTrip(t, f64)
		roundTrip(t, i8)
		roundTrip(t, i16)
		roundTrip(t, i32)
		roundTrip(t, i64)
		roundTrip(t, u16)
		roundTrip(t, u32)
		roundTrip(t, u64)
		roundTrip(t, in)
		roundTrip(t, un)
		roundTrip(t, c64)
		roundTrip(t, c128)
		roundTrip(t, vec(f64))
	}
	// nil stays nil, empty stays empty.
	if got := roundTrip(t, []float64(nil)); got != nil {
		t.Errorf("nil []float64 decoded as %#v", got)
	}
	if got := roundTrip(t, []byte{}); got == nil {
		t.Errorf("empty []byte decoded as nil")
	}
	if got := roundTrip(t, []int32{}); got == nil {
		t.Errorf("empty []int32 decoded as nil")
	}
	if got := roundTrip(t, []uint16(nil)); got != nil {
		t.Errorf("nil []uint16 decoded as %#v", got)
	}
}

func TestRoundTripScalars(t *testing.T) {
	roundTrip(t, 0)
	roundTrip(t, -1)
	roundTrip(t, math.MaxInt)
	roundTrip(t, int8(-128))
	roundTrip(t, int16(-300))
	roundTrip(t, int32(math.MinInt32))
	roundTrip(t, int64(math.MinInt64))
	roundTrip(t, uint(math.MaxUint))
	roundTrip(t, uint8(255))
	roundTrip(t, uint16(65535))
	roundTrip(t, uint32(1<<31))
	roundTrip(t, uint64(math.MaxUint64))
	roundTrip(t, float32(1.5))
	roundTrip(t, math.Inf(-1))
	roundTrip(t, math.SmallestNonzeroFloat64)
	roundTrip(t, complex64(1+2i))
	roundTrip(t, complex(math.Pi, -1))
	roundTrip(t, true)
	roundTrip(t, false)
	roundTrip(t, celsius(-40))
	roundTrip(t, 3*time.Second)
	roundTrip(t, uintptr(7))
	nan := math.Float64frombits(0x7ff8_0000_dead_beef)
	if got, err := Decode[float64](mustBytes(Encode(nan)), false); err != nil || math.Float64bits(got) != math.Float64bits(nan) {
		t.Errorf("NaN decoded as %#x, %v", math.Float64bits(got), err)
	}
	if got, err := Decode[[]float64](mustBytes(Encode([]float64{nan})), true); err != nil || math.Float64bits(got[0]) != math.Float64bits(nan) {
		t.Errorf("[]NaN decoded as %v, %v", got, err)
	}
	type withNaN struct{ F float64 }
	if got, err := Decode[withNaN](mustBytes(Encode(withNaN{nan})), true); err != nil || math.Float64bits(got.F) != math.Float64bits(nan) {
		t.Errorf("struct NaN decoded as %#x, %v", math.Float64bits(got.F), err)
	}
	if e, _ := Encode(42); e.Len() != 40 {
		t.Errorf("Encode(42) is %d bytes, want 40 (32 header + 8)", e.Len())
	}
}

func TestRoundTripStrings(t *testing.T) {
	for _, s := range []string{"", "a", "hello, world", "\xff\xfe not utf-8", strings.Repeat("x", 100001)} {
		roundTrip(t, s)
		roundTrip(t, label(s))
	}
	// A string result never aliases data.
	e, _ := Encode("abc")
	b := e.Bytes()
	s, _ := Decode[string](b, true)
	b[len(b)-1] = 'z'
	if s != "abc" {
		t.Errorf("string changed with its data: %q", s)
	}
}

func TestRoundTripSerializer(t *testing.T) {
	roundTrip(t, small{ID: 42, Name: "n", Score: 1.5, Tags: []string{"a", "", "c"}, OK: true})
	roundTrip(t, small{})
	m := map[string]int{}
	for i := range 100 {
		m[strings.Repeat("k", i)] = i
	}
	roundTrip(t, m)
	roundTrip(t, map[string]int(nil))
	roundTrip(t, map[int][]float64{1: {1, 2}, 2: nil, 3: {}})
	roundTrip(t, [][]int{{1, 2}, {}, nil, {3}})
	roundTrip(t, [][]float64{})
	roundTrip(t, []string{"a", "b"})
	roundTrip(t, []bool{true, false, true})
	roundTrip(t, [4]int{1, 2, 3, 4})
	roundTrip(t, []small{{ID: 1}, {ID: 2, Tags: []string{"x"}}})
	roundTrip(t, &small{ID: 7})
	roundTrip(t, (*small)(nil))
	x := 5
	h := holder{
		R:     ref{id: [20]byte{1, 2, 3}, owner: 9},
		P:     &ref{id: [20]byte{19: 1}, owner: 5},
		Rs:    []ref{{owner: 1}, {owner: 2}},
		M:     map[string]ref{"a": {owner: 3}, "b": {id: [20]byte{4}}},
		PM:    map[int]*ref{1: {owner: 8}},
		NS:    [][]int{{1, 2}, {3}},
		Empty: []int{},
		PI:    &x,
		List:  &node{1, &node{2, &node{3, nil}}},
		When:  time.Date(2024, 2, 29, 12, 0, 0, 123456789, time.UTC),
		Inner: small{Name: "inner"},
		Any:   "str",
		Bytes: []byte{0, 1, 2},
	}
	roundTrip(t, h)
	roundTrip(t, []ref{{owner: 1}, {owner: 2, id: [20]byte{7}}})
	roundTrip(t, map[string][]ref{"x": {{owner: 3}}})
	roundTrip(t, ref{owner: 11})
	id := uint64(77)
	roundTrip(t, struct{ A, B optRef }{B: optRef{&id}})
	roundTrip(t, []optRef{{}, {&id}})
	roundTrip(t, map[string]optRef{"zero": {}, "set": {&id}})

	// A long list nests deeper than the library's default limit of 32.
	var list *node
	for i := range 1000 {
		list = &node{i, list}
	}
	roundTrip(t, list)

	// Types with their own BinaryMarshaler keep it, even when raw-shaped.
	roundTrip(t, custom{1, 2, 3})
	e, _ := Encode(enumList{1, 2})
	if got, err := Decode[enumList](e.Bytes(), true); err != nil || !reflect.DeepEqual(got, enumList{1, 2}) {
		t.Errorf("enumList: %v, %v", got, err)
	}
	for _, tc := range []struct {
		b    []byte
		want kind
	}{
		{mustBytes(Encode(custom{})), kindCBOR},
		{mustBytes(Encode(enumList{})), kindCBOR},
		{mustBytes(Encode(vec{})), kindSlice},
		{mustBytes(Encode(label(""))), kindString},
		{mustBytes(Encode(time.Duration(0))), kindScalar},
		{mustBytes(Encode([]bool{})), kindCBOR},
	} {
		if got := kind(tc.b[offKind]); got != tc.want {
			t.Errorf("%s encoded as %v, want %v", tc.b[fixedLen:fixedLen+int(tc.b[offName])], got, tc.want)
		}
	}
}

func mustBytes(e Encoded, err error) []byte {
	if err != nil {
		panic(err)
	}
	return e.Bytes()
}

func TestEncodeAliases(t *testing.T) {
	v := []float64{1, 2, 3}
	e, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	v[0] = 42
	got, _ := Decode[[]float64](e.Bytes(), false)
	if got[0] != 42 {
		t.Errorf("Encoded did not alias the slice: %v", got)
	}
}

func TestView(t *testing.T) {
	src := []float64{1, 2, 3, 4, 5}
	data := alignedCopy(mustBytes(Encode(src)), 0)

	copied, err := Decode[[]float64](data, false)
	if err != nil {
		t.Fatal(err)
	}
	viewed, err := Decode[[]float64](data, true)
	if err != nil {
		t.Fatal(err)
	}
	if cap(viewed) != len(src) {
		t.Errorf("view has cap %d, want %d", cap(viewed), len(src))
	}
	binary.LittleEndian.PutUint64(data[len(data)-8:], math.Float64bits(-1))
	if viewed[4] != -1 {
		t.Errorf("view=true did not alias data: %v", viewed)
	}
	if copied[4] != 5 {
		t.Errorf("view=false aliased data: %v", copied)
	}

	// []byte views need no alignment.
	bdata := alignedCopy(mustBytes(Encode([]byte("abcdef"))), 3)
	bv, _ := Decode[[]byte](bdata, true)
	bdata[len(bdata)-1] = 'Z'
	if string(bv) != "abcdeZ" {
		t.Errorf("[]byte view did not alias data: %q", bv)
	}

	// Misaligned data: view=true copies (checkptr, under -race, checks the
	// code never makes a misaligned *float64).
	for _, off := range []int{1, 2, 4, 12} {
		mis := alignedCopy(mustBytes(Encode(src)), off)
		got, err := Decode[[]float64](mis, true)
		if err != nil {
			t.Fatal(err)
		}
		mis[len(mis)-1] ^= 0xff
		if !reflect.DeepEqual(got, src) {
			t.Errorf("misaligned (off %d) view aliased data: %v", off, got)
		}
	}
}

func TestTypeError(t *testing.T) {
	data := mustBytes(Encode([]float64{1}))
	_, err := Decode[[]int32](data, true)
	var te *TypeError
	if !errors.As(err, &te) || te.Have != "[]float64" || te.Want != "[]int32" {
		t.Fatalf("got %#v, want TypeError{[]float64, []int32}", err)
	}
	if err.Error() != "object holds []float64, not []int32" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(err, ErrType) || errors.Is(err, ErrCorrupt) {
		t.Errorf("errors.Is(%v, ErrType) false, or ErrCorrupt true", err)
	}
	for _, f := range []func([]byte) error{
		func(b []byte) error { _, err := Decode[int64](b, false); return err },
		func(b []byte) error { _, err := Decode[vec](b, false); return err }, // named differs
		func(b []byte) error { _, err := Decode[small](b, false); return err },
		func(b []byte) error { _, err := Decode[any](b, false); return err },
	} {
		if err := f(data); !errors.Is(err, ErrType) {
			t.Errorf("got %v, want ErrType", err)
		}
	}
	if _, err := Decode[int](mustBytes(Encode(small{})), false); !errors.Is(err, ErrType) {
		t.Errorf("small as int: %v", err)
	}
	if name, err := TypeName(mustBytes(Encode(small{}))); err != nil || name != "codec.small" {
		t.Errorf("TypeName = %q, %v", name, err)
	}
	long := map[string]map[string]map[string]map[string]map[string][]*holder{}
	name, err := TypeName(mustBytes(Encode(long)))
	if err != nil || len(name) != maxName || !strings.HasSuffix(name, "...") ||
		!strings.HasPrefix(reflect.TypeOf(long).String(), name[:maxName-3]) {
		t.Errorf("long TypeName = %q, %v", name, err)
	}
	if Fingerprint[int]() == Fingerprint[int64]() || Fingerprint[vec]() == Fingerprint[[]float64]() {
		t.Errorf("fingerprints collide")
	}
}

func TestCorrupt(t *testing.T) {
	good := mustBytes(Encode([]float64{1, 2, 3}))
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"nil":           nil,
		"short":         good[:10],
		"header only":   good[:fixedLen],
		"truncated":     good[:len(good)-1],
		"magic":         mutate(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version":       mutate(func(b []byte) []byte { b[2] = 9; return b }),
		"kind 0":        mutate(func(b []byte) []byte { b[offKind] = 0; return b }),
		"kind 99":       mutate(func(b []byte) []byte { b[offKind] = 99; return b }),
		"other kind":    mutate(func(b []byte) []byte { b[offKind] = byte(kindCBOR); return b }),
		"name len":      mutate(func(b []byte) []byte { b[offName] = 200; return b }),
		"flags":         mutate(func(b []byte) []byte { b[offFlags] = 0x80; return b }),
		"nil flag":      mutate(func(b []byte) []byte { b[offFlags] = flagNil; return b }),
		"reserved":      mutate(func(b []byte) []byte { b[7] = 1; return b }),
		"huge length":   mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[offLen:], math.MaxUint64); return b }),
		"odd length":    mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[offLen:], 23); return b }),
		"scalar length": mustBytes(Encode(int64(1)))[:39],
	}
	for name, b := range cases {
		_, err := Decode[[]float64](b, true)
		if name == "scalar length" {
			_, err = Decode[int64](b, true)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := TypeName(good[:5]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("TypeName of 5 bytes: %v", err)
	}

	// Scalars: a bool byte other than 0 or 1.
	bb := mustBytes(Encode(true))
	bb[len(bb)-1] = 2
	if _, err := Decode[bool](bb, false); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bool 2: %v", err)
	}

	// Serializer payloads: garbage, truncation, and a BinaryUnmarshaler
	// that rejects its bytes.
	sb := mustBytes(Encode(holder{R: ref{owner: 1}}))
	for i := range 64 {
		b := bytes.Clone(sb)
		b[len(b)-1-i] ^= 0xa5
		Decode[holder](b, false) // must not panic; may or may not fail
	}
	trunc := bytes.Clone(sb[:len(sb)-3])
	binary.LittleEndian.PutUint64(trunc[offLen:], binary.LittleEndian.Uint64(trunc[offLen:])-3)
	if _, err := Decode[holder](trunc, false); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated CBOR: %v", err)
	}
	rb := mustBytes(Encode(ref{}))
	i := bytes.Index(rb, []byte{0x58, 28}) // CBOR byte string of 28 bytes
	rb[i+1] = 27
	rb = rb[:len(rb)-1]
	binary.LittleEndian.PutUint64(rb[offLen:], binary.LittleEndian.Uint64(rb[offLen:])-1)
	if _, err := Decode[ref](rb, false); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "want 28 bytes") {
		t.Errorf("bad ref: %v", err)
	}
}

func TestTrailingBytesIgnored(t *testing.T) {
	b := append(mustBytes(Encode("abc")), make([]byte, 4096)...)
	if s, err := Decode[string](b, false); err != nil || s != "abc" {
		t.Errorf("got %q, %v", s, err)
	}
}

func TestHeaderSize(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want int
	}{
		{mustBytes(Encode(1)), 32},
		{mustBytes(Encode([]float64{})), 48},
		{mustBytes(Encode(small{})), 48},
		{mustBytes(Encode(map[string]int{})), 48},
	} {
		h, err := parseHeader(tc.b)
		if err != nil || h.off != tc.want || h.off%payloadAln != 0 {
			t.Errorf("%s: header %d bytes (%v), want %d", h.name, h.off, err, tc.want)
		}
	}
}

func TestZeroEncoded(t *testing.T) {
	var e Encoded
	if e.Len() != 0 || e.Bytes() != nil {
		t.Errorf("zero Encoded: Len %d, Bytes %v", e.Len(), e.Bytes())
	}
	e.WriteTo(nil)
}

func TestEncodeError(t *testing.T) {
	if _, err := Encode(make(chan int)); err == nil {
		t.Errorf("Encode(chan) succeeded")
	}
}

// TestWireFallback checks the element-by-element path used on hosts where
// memory is not the wire format, against the memory itself on this one.
func TestWireFallback(t *testing.T) {
	if !hostLE || unsafe.Sizeof(int(0)) != 8 {
		t.Skip("compares with memory on a little-endian 64-bit host")
	}
	check := func(v any) {
		rv := reflect.ValueOf(v)
		ti := newTypeInfo(rv.Type())
		n := rv.Len()
		p := rv.UnsafePointer()
		mem := unsafe.Slice((*byte)(p), n*ti.size)
		wire := make([]byte, n*ti.wire)
		putWire(wire, p, n, ti.size, ti.elem)
		if !bytes.Equal(wire, mem) {
			t.Errorf("%T: putWire differs from memory", v)
		}
		back := makeElems(ti.size, n)
		if err := readWire(back, wire, n, ti.size, ti.elem); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(unsafe.Slice((*byte)(back), n*ti.size), mem) {
			t.Errorf("%T: readWire differs from memory", v)
		}
	}
	check([]int8{-1, 2, 3})
	check([]uint8{1, 2, 255})
	check([]int16{-1, 300})
	check([]uint16{65535, 1})
	check([]int32{-1, 1 << 30})
	check([]float32{1.5, -2})
	check([]int64{math.MinInt64, 3})
	check([]float64{math.Pi})
	check([]int{-5, math.MaxInt})
	check([]uint{math.MaxUint, 0})
	check([]complex64{1 + 2i})
	check([]complex128{-1 - 2i, 3})
}
