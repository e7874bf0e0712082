package codec_test

import (
	"errors"
	"fmt"

	"github.com/raygo/raygo/runtime/codec"
)

type Point struct {
	X, Y float64
	Tag  string
}

func Example() {
	// A numeric slice: raw little-endian bytes behind a small header.
	e, err := codec.Encode([]float64{1, 2, 3})
	if err != nil {
		panic(err)
	}
	// In raygo the destination is a page-aligned shared-memory mapping;
	// any buffer of e.Len() bytes will do.
	buf := make([]byte, e.Len())
	e.WriteTo(buf)

	v, err := codec.Decode[[]float64](buf, true) // may alias buf
	fmt.Println(v, err)

	name, _ := codec.TypeName(buf)
	fmt.Println(name)

	// Decoding as the wrong type is a *TypeError.
	_, err = codec.Decode[[]int32](buf, false)
	fmt.Println(err, errors.Is(err, codec.ErrType))

	// Anything else goes through the serializer.
	p, _ := codec.Encode(Point{X: 1, Y: 2, Tag: "origin+1"})
	q, err := codec.Decode[Point](p.Bytes(), false)
	fmt.Printf("%+v %v\n", q, err)

	// Output:
	// [1 2 3] <nil>
	// []float64
	// object holds []float64, not []int32 true
	// {X:1 Y:2 Tag:origin+1} <nil>
}
