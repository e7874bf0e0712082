package backend

import (
	"math"
	"testing"
	"unsafe"
)

func TestFloat16RoundTrip(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := Float16(i)
		f := h.Float32()
		if f != f {
			if g := Float16From(f); g.Float32() == g.Float32() {
				t.Fatalf("NaN %#04x came back as %#04x, not a NaN", i, uint16(g))
			}
			continue
		}
		if g := Float16From(f); g != h {
			t.Fatalf("%#04x -> %v -> %#04x", i, f, uint16(g))
		}
	}
}

func TestBFloat16RoundTrip(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		b := BFloat16(i)
		f := b.Float32()
		if f != f {
			if g := BFloat16From(f); g.Float32() == g.Float32() {
				t.Fatalf("NaN %#04x came back as %#04x, not a NaN", i, uint16(g))
			}
			continue
		}
		if g := BFloat16From(f); g != b {
			t.Fatalf("%#04x -> %v -> %#04x", i, f, uint16(g))
		}
	}
}

func TestHalfRounding(t *testing.T) {
	for _, c := range []struct {
		in   float32
		want float32
	}{
		{1 + 1.0/2048, 1},                              // a tie rounds to even (down)
		{1 + 3.0/2048, 1 + 2.0/1024},                   // a tie rounds to even (up)
		{1 + 1.0/2048 + 1.0/65536, 1 + 1.0/1024},       // above the tie rounds up
		{65504, 65504},                                 // largest finite
		{65520, float32(math.Inf(1))},                  // rounds past it
		{1e-8, 0},                                      // underflow
		{5.960464477539063e-08, 5.960464477539063e-08}, // smallest subnormal
		{-2.5, -2.5},
	} {
		if got := Float16From(c.in).Float32(); got != c.want {
			t.Errorf("Float16From(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := BFloat16From(1 + 1.0/256).Float32(); got != 1 {
		t.Errorf("bfloat16 tie: %v, want 1", got)
	}
	if got := BFloat16From(1 + 3.0/256).Float32(); got != 1+2.0/128 {
		t.Errorf("bfloat16 tie up: %v", got)
	}
}

func TestReduceAndScale(t *testing.T) {
	a := []float32{1, -2, 3, 4, 5}
	b := []float32{2, 2, -1, 4, 0.5}
	for _, c := range []struct {
		op   Op
		want []float32
	}{
		{Sum, []float32{3, 0, 2, 8, 5.5}},
		{Prod, []float32{2, -4, -3, 16, 2.5}},
		{Min, []float32{1, -2, -1, 4, 0.5}},
		{Max, []float32{2, 2, 3, 4, 5}},
	} {
		dst := append([]float32(nil), a...)
		Reduce(F32, c.op, bytesF32(dst), bytesF32(b))
		for i := range dst {
			if dst[i] != c.want[i] {
				t.Fatalf("%v: got %v, want %v", c.op, dst, c.want)
			}
		}
	}
	u := []byte{200, 100}
	Reduce(U8, Sum, u, []byte{100, 100})
	if u[0] != 44 || u[1] != 200 {
		t.Fatalf("uint8 sums must wrap: %v", u)
	}
	Scale(U8, u, 4)
	if u[0] != 11 || u[1] != 50 {
		t.Fatalf("uint8 scale: %v", u)
	}
	h := []uint16{uint16(Float16From(1.5)), uint16(Float16From(-3))}
	Reduce(F16, Max, bytesU16(h), bytesU16([]uint16{uint16(Float16From(2)), uint16(Float16From(-4))}))
	if Float16(h[0]).Float32() != 2 || Float16(h[1]).Float32() != -3 {
		t.Fatalf("float16 max: %v %v", Float16(h[0]).Float32(), Float16(h[1]).Float32())
	}
	x := []byte{1, 2, 3, 4}
	Reduce3(U8, Sum, x, x, []byte{1, 1, 1, 1})
	if x[3] != 5 {
		t.Fatalf("Reduce3 in place: %v", x)
	}
	out := make([]byte, 4)
	Reduce3(U8, Max, out, []byte{1, 9, 3, 4}, []byte{5, 6, 7, 8})
	if out[1] != 9 || out[0] != 5 {
		t.Fatalf("Reduce3: %v", out)
	}
}

func bytesF32(s []float32) []byte { return sliceBytes(s) }

func bytesU16(s []uint16) []byte { return sliceBytes(s) }

func sliceBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(z)))
}
