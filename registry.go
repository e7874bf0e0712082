package raygo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/codec"
	"github.com/raygo/raygo/runtime/wire"
)

// The registry maps stable names to the functions, actor constructors and
// methods of this binary. Driver and workers run the same binary, so they
// build the same registry at package init; a worker whose registry hashes
// differently is refused.
var registry = struct {
	sync.Mutex
	entries map[string]*entry
	frozen  bool
}{entries: map[string]*entry{}}

type entry struct {
	name string
	sig  string // Go signature, part of the registry hash
	// task and method bodies
	run func(ctx context.Context, self any, args [][]byte) ([]runtime.Result, error)
	// actor constructors
	construct func(ctx context.Context, args [][]byte) (any, error)
}

func register(e *entry) {
	registry.Lock()
	defer registry.Unlock()
	if e.name == "" || strings.ContainsAny(e.name, " \t\n") {
		panic(fmt.Sprintf("raygo: invalid registration name %q", e.name))
	}
	if _, dup := registry.entries[e.name]; dup {
		panic(fmt.Sprintf("raygo: %q registered twice", e.name))
	}
	if registry.frozen {
		panic(fmt.Sprintf("raygo: %q registered after Init; register functions and actors in package-level vars or init()", e.name))
	}
	registry.entries[e.name] = e
}

func lookup(name string) *entry {
	registry.Lock()
	defer registry.Unlock()
	return registry.entries[name]
}

// registryList returns "name signature" lines, sorted, and their hash.
func registryList() ([]string, string) {
	registry.Lock()
	defer registry.Unlock()
	registry.frozen = true
	lines := make([]string, 0, len(registry.entries))
	for _, e := range registry.entries {
		lines = append(lines, e.name+" "+e.sig)
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l)
		h.Write([]byte{0})
	}
	return lines, hex.EncodeToString(h.Sum(nil))
}

var binHash struct {
	once sync.Once
	path string
	hash string
	err  error
}

func binaryIdentity() (string, string, error) {
	binHash.once.Do(func() {
		p, err := os.Executable()
		if err != nil {
			binHash.err = err
			return
		}
		f, err := os.Open(p)
		if err != nil {
			binHash.err = err
			return
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			binHash.err = err
			return
		}
		binHash.path, binHash.hash = p, hex.EncodeToString(h.Sum(nil))
	})
	return binHash.path, binHash.hash, binHash.err
}

// handler runs registered code in worker processes.
type handler struct{}

func (handler) RunTask(ctx context.Context, spec *wire.TaskSpec, args [][]byte) ([]runtime.Result, error) {
	e := lookup(spec.Func)
	if e == nil || e.run == nil {
		return nil, &runtime.NoFunctionError{Name: spec.Func}
	}
	return e.run(ctx, nil, args)
}

func (handler) NewActor(ctx context.Context, spec *wire.TaskSpec, args [][]byte) (any, error) {
	e := lookup(spec.Func)
	if e == nil || e.construct == nil {
		return nil, &runtime.NoFunctionError{Name: spec.Func}
	}
	return e.construct(ctx, args)
}

func (handler) CallActor(ctx context.Context, actor any, spec *wire.TaskSpec, args [][]byte) ([]runtime.Result, error) {
	name := spec.Func + "." + spec.Method
	e := lookup(name)
	if e == nil || e.run == nil {
		return nil, &runtime.NoFunctionError{Name: name}
	}
	return e.run(ctx, actor, args)
}

// decodeArg decodes argument i of a call, naming it on failure.
func decodeArg[T any](name string, args [][]byte, i int, view bool) (T, error) {
	var zero T
	if i >= len(args) {
		return zero, fmt.Errorf("%s: got %d arguments, want at least %d", name, len(args), i+1)
	}
	v, err := codec.Decode[T](args[i], view)
	if err != nil {
		return zero, fmt.Errorf("%s: argument %d: %w", name, i+1, err)
	}
	return v, nil
}

// result encodes one return value.
func result[T any](name string, v T) (runtime.Result, error) {
	enc, err := codec.Encode(v)
	if err != nil {
		return runtime.Result{}, fmt.Errorf("%s: encode result: %w", name, err)
	}
	return runtime.Result{Enc: enc, Contained: containedRefs(v)}, nil
}

func sigOf[T any]() string {
	var p *T
	return fmt.Sprintf("%T", p)[1:]
}
