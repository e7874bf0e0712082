//go:build !(cgo && unix)

package nccl

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/raygo/raygo/collectives/backend"
)

func TestNoCgo(t *testing.T) {
	f, _ := backend.Lookup(Name)
	_, err := f(context.Background(), backend.Config{Group: "g", Size: 1})
	if !errors.Is(err, ErrNoCgo) || !strings.Contains(err.Error(), "nccl needs a cgo build") {
		t.Fatalf("got %v", err)
	}
	if _, err := Probe(); !errors.Is(err, ErrNoCgo) {
		t.Fatalf("Probe: %v", err)
	}
}
