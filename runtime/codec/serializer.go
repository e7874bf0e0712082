package codec

import (
	"math"

	"github.com/fxamacker/cbor/v2"
)

// The serializer for everything off the raw path. The options differ from
// the library's defaults where a default would lose Go values:
//   - time.Time keeps its nanoseconds (RFC 3339 text, not Unix seconds);
//   - NaN payloads are kept;
//   - strings that are not valid UTF-8 decode as they were;
//   - large slices and maps, and deep nesting (linked structures), decode:
//     the limits are the library's maximums, not its 131072 elements and
//     32 levels. Malformed input is still rejected before anything is
//     allocated for it, since the decoder checks well-formedness first.
//
// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler are honoured
// (CBOR byte strings) at any depth: in fields, slices and map values.
var (
	encMode = must(cbor.EncOptions{
		Time:       cbor.TimeRFC3339Nano,
		NaNConvert: cbor.NaNConvertNone,
	}.UserBufferEncMode())

	decMode = must(cbor.DecOptions{
		MaxNestedLevels:   65535,
		MaxArrayElements:  math.MaxInt32,
		MaxMapPairs:       math.MaxInt32,
		UTF8:              cbor.UTF8DecodeInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode())
)

// must fails package initialization if the fixed options above are wrong.
func must[M any](m M, err error) M {
	if err != nil {
		panic(err)
	}
	return m
}
