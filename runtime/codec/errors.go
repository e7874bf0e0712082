package codec

import (
	"errors"
	"fmt"
)

var (
	// ErrType is matched (errors.Is) by every *TypeError.
	ErrType = errors.New("codec: wrong type")
	// ErrCorrupt is wrapped by every error about bytes that are not a
	// well-formed encoded object: truncated, garbage, or a payload that
	// the serializer (or a BinaryUnmarshaler) rejects.
	ErrCorrupt = errors.New("codec: corrupt object")
)

// TypeError reports a Decode into a type other than the encoded one.
// Have is the type recorded in the object's header (possibly cut short,
// see TypeName); Want is the type asked for.
type TypeError struct {
	Have, Want string
}

func (e *TypeError) Error() string {
	return "object holds " + e.Have + ", not " + e.Want
}

// Is makes errors.Is(err, ErrType) true for a *TypeError.
func (e *TypeError) Is(target error) bool { return target == ErrType }

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}
