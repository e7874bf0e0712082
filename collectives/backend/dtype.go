package backend

import (
	"fmt"
	"math"
)

// DType is the element type of a buffer.
type DType uint8

// Element types. Float16 and BFloat16 travel as 16-bit patterns and are
// reduced in float32.
const (
	F32  DType = iota + 1 // float32
	F64                   // float64
	I32                   // int32
	I64                   // int64
	U8                    // uint8
	F16                   // Float16
	BF16                  // BFloat16
)

// DTypes lists every element type, in a fixed order.
var DTypes = []DType{F32, F64, I32, I64, U8, F16, BF16}

// Size is the width of one element in bytes.
func (d DType) Size() int {
	switch d {
	case F32, I32:
		return 4
	case F64, I64:
		return 8
	case U8:
		return 1
	case F16, BF16:
		return 2
	}
	return 0
}

// Valid reports whether d is one of the element types.
func (d DType) Valid() bool { return d.Size() != 0 }

func (d DType) String() string {
	switch d {
	case F32:
		return "float32"
	case F64:
		return "float64"
	case I32:
		return "int32"
	case I64:
		return "int64"
	case U8:
		return "uint8"
	case F16:
		return "float16"
	case BF16:
		return "bfloat16"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// ParseDType is the inverse of DType.String.
func ParseDType(s string) (DType, error) {
	for _, d := range DTypes {
		if d.String() == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("collectives: unknown element type %q (want float32, float64, int32, int64, uint8, float16 or bfloat16)", s)
}

// Op is a reduction.
type Op uint8

// Reductions. Backends never see Avg: the group reduces with Sum and
// divides by the group size.
const (
	Sum Op = iota + 1
	Prod
	Min
	Max
	Avg
)

// Ops lists every reduction, in a fixed order.
var Ops = []Op{Sum, Prod, Min, Max, Avg}

func (o Op) String() string {
	switch o {
	case Sum:
		return "sum"
	case Prod:
		return "prod"
	case Min:
		return "min"
	case Max:
		return "max"
	case Avg:
		return "avg"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Valid reports whether o is one of the reductions.
func (o Op) Valid() bool { return o >= Sum && o <= Avg }

// ParseOp is the inverse of Op.String.
func ParseOp(s string) (Op, error) {
	for _, o := range Ops {
		if o.String() == s {
			return o, nil
		}
	}
	return 0, fmt.Errorf("collectives: unknown reduction %q (want sum, prod, min, max or avg)", s)
}

// Float16 is an IEEE 754 half-precision number, kept as its bit pattern.
type Float16 uint16

// BFloat16 is a bfloat16 number (the top half of a float32), kept as its
// bit pattern.
type BFloat16 uint16

// Float32 widens h exactly.
func (h Float16) Float32() float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: normalise
		e := uint32(127 - 15 + 1)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		man &= 0x3ff
		return math.Float32frombits(sign | e<<23 | man<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// Float16From rounds f to the nearest half-precision value (ties to even).
func Float16From(f float32) Float16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if man != 0 {
			return Float16(sign | 0x7e00)
		}
		return Float16(sign | 0x7c00)
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return Float16(sign | 0x7c00) // overflow to Inf
	}
	if e <= 0 {
		if e < -10 {
			return Float16(sign) // underflow to zero
		}
		man |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		rest := man & (1<<shift - 1)
		m := man >> shift
		if rest > half || (rest == half && m&1 == 1) {
			m++
		}
		return Float16(sign | uint16(m))
	}
	m := man >> 13
	rest := man & 0x1fff
	h := uint32(e)<<10 | m
	if rest > 0x1000 || (rest == 0x1000 && m&1 == 1) {
		h++ // may carry into the exponent, which is right (up to Inf)
	}
	return Float16(sign | uint16(h))
}

// Float32 widens b exactly.
func (b BFloat16) Float32() float32 { return math.Float32frombits(uint32(b) << 16) }

// BFloat16From rounds f to the nearest bfloat16 value (ties to even).
func BFloat16From(f float32) BFloat16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and a NaN
		return BFloat16(b>>16 | 0x40)
	}
	b += 0x7fff + (b>>16)&1
	return BFloat16(b >> 16)
}
