// Package codec turns Go values into object bytes and back: task
// arguments, task results and Put values. An encoded object is a small
// header followed by a payload; small objects travel inline in messages,
// large ones are written into page-aligned shared-memory files (see
// objstore), which Decode can read without copying.
//
//	e, err := codec.Encode(v)          // v of static type T
//	e.WriteTo(mapping)                 // or e.Bytes() for an inline message
//	v, err := codec.Decode[T](b, true) // view: may alias b
//
// # Payloads
//
// Three kinds of value skip the serializer and are stored as their raw
// little-endian bytes (int, uint and uintptr widened to 64 bits):
//
//   - numeric slices: []byte, []int8 … []int64, []uint16 … []uint64, []int,
//     []uint, []float32, []float64, []complex64, []complex128;
//   - strings;
//   - scalars: bool and every integer, float and complex type.
//
// Named types with these underlying types (time.Duration, type Vec
// []float64) take the same path, unless the type or its element has its
// own encoding (encoding.BinaryMarshaler or BinaryUnmarshaler, or the cbor
// equivalents), which is then honoured. Encode does not copy a string or a
// slice: the Encoded aliases it until WriteTo or Bytes copies it out. On a
// little-endian 64-bit host (amd64, arm64) the bytes are the value's
// memory; elsewhere they are converted element by element.
//
// Decode[T](data, true) of a []byte or numeric slice returns a slice that
// aliases data when the payload is aligned for the element type, which it
// always is when data starts 16-byte aligned (a page-aligned mapping); no
// allocation, whatever the size. Otherwise, and with view false, it
// copies. Strings and everything else are always copied.
//
// Everything else, and []bool, is CBOR (RFC 8949, by
// github.com/fxamacker/cbor/v2): structs by exported field (cbor or json tags apply), maps,
// nested slices, arrays, pointers (nil ones included), time.Time (to the
// nanosecond), and encoding.BinaryMarshaler / BinaryUnmarshaler types at
// any depth, which is how a raygo Ref inside a struct, slice or map
// carries its object ID. Interface-typed fields decode to the generic
// CBOR types (int64 or uint64, float64, string, []any,
// map[any]any). Cyclic values are not supported.
//
// # Choice of serializer
//
// Measured by codec_bench_test.go (gob, cbor) and the same benchmarks in a
// scratch module (msgpack); best of 5 runs of -benchtime=0.5s -cpu=1 on
// 2 vCPU AMD EPYC (32 MiB L3), 23 GiB, linux/amd64, go1.26.8, raygo at
// 6ae23e3, on a shared machine, so ±15%. gob uses a fresh Encoder and
// Decoder per value, as every object must be standalone. Times are
// encode / decode; sizes are of the payload.
//
//	                      gob               cbor v2.10.0      msgpack v5.4.1
//	small struct (5 fld)  1.78µs / 9.86µs   0.14µs / 0.35µs   0.26µs / 0.46µs
//	                      121 B             57 B              64 B
//	map[string]int, 100   8.5µs / 14.8µs    3.7µs / 6.9µs     9.8µs / 13.0µs
//	                      883 B             851 B             837 B
//	[]struct, 10k         0.75ms / 0.73ms   0.43ms / 1.31ms   1.10ms / 2.01ms
//	                      203 KB            279 KB            339 KB
//
// cbor is fastest at the common case, small values, by 12-28x over gob
// (which sends a type description with each standalone value), and 2x on
// the map. On 10k structs gob decodes 1.8x faster and cbor encodes 1.7x
// faster; gob's round trip is 15% shorter. msgpack is slower than cbor everywhere. gob also
// turns empty slices into nil, rejects nil pointers at top level, and
// needs Register for interface fields. All three handle
// BinaryMarshaler fields. The options this package sets (serializer.go)
// cost nothing measurable; the header and the one copy out of a pooled
// buffer add about 40 ns per value.
//
// Raw path, same machine: Encode of an int 22 ns (one 48-byte
// allocation), Decode 20 ns (none); Encode of a 1M []float64 0 allocations,
// WriteTo 8 MiB in 0.12 ms; Decode with view 26 ns and 0 allocations, with
// copy 0.36 ms.
//
// # Header
//
// Magic "RG", version, kind, a 64-bit fingerprint of the static type T
// (FNV-1a of its kind, package path and String(); see Fingerprint), the
// payload length, and the type name for error messages (cut to 64 bytes),
// padded to a multiple of 16 bytes: 32 bytes for an int, 48 for a type
// name of up to 24 bytes. header.go has the layout.
//
// # Errors
//
// Decode into a type other than the encoded one fails with a *TypeError
// ("object holds []float64, not []int32"; errors.Is(err, ErrType)).
// Truncated or malformed bytes fail with an error wrapping ErrCorrupt and
// never panic (FuzzDecode). The fingerprint is of Go types, so both ends
// must run the same binary, as raygo's workers do.
package codec
