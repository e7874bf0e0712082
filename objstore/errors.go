package objstore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns names the object or
// path concerned and wraps one of these where one applies, so callers test
// with errors.Is.
var (
	ErrFull        = errors.New("object store full") // matched by *FullError
	ErrExists      = errors.New("object already exists")
	ErrNotFound    = errors.New("object not found")
	ErrClosed      = errors.New("object store closed")
	ErrInvalidName = errors.New("invalid object name")
	ErrSealed      = errors.New("object is sealed")
	ErrNoSpace     = errors.New("no memory left on the store's filesystem")
)

// FullError reports a reservation for which the arena has no free extent
// large enough. errors.Is(err, ErrFull) is true for it.
type FullError struct {
	Name    string // the object that did not fit
	Size    int64  // bytes it needed
	Used    int64  // bytes held by objects at the time
	Limit   int64  // the store's size
	Largest int64  // the largest free extent
}

func (e *FullError) Error() string {
	msg := fmt.Sprintf("object store full: object %s needs %s, %s of %s in use",
		e.Name, human(e.Size), human(e.Used), human(e.Limit))
	if free := e.Limit - e.Used; free >= e.Size {
		msg += fmt.Sprintf(" (%s free, but the largest free extent is %s)", human(free), human(e.Largest))
	}
	return msg
}

// Is makes errors.Is(err, ErrFull) hold.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// human formats n bytes with a binary unit and one decimal: "512 B",
// "1.5 KiB", "3.2 GiB".
func human(n int64) string {
	const units = "KMGTPE"
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/1024, 0
	for (f >= 1024 || f <= -1024) && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, units[i])
}
