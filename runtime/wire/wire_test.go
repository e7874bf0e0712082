package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func oid(node, proc uint32, seq uint64, index uint32) ObjectID {
	return ObjectID{Task: TaskID{NodeID(node), ProcID(proc), seq}, Index: index}
}

// sampleSpec is a task spec with every field set, several to edge values.
func sampleSpec() TaskSpec {
	return TaskSpec{
		ID:     TaskID{Node: 3, Proc: 7, Seq: 1<<40 + 5},
		Job:    12,
		Kind:   KindActorCall,
		Func:   "example.com/pkg.Counter",
		Method: "Add",
		Actor:  ActorID{Node: 2, Proc: 1, Seq: 9},
		Name:   "Counter.Add",
		Args: []Arg{
			{Data: []byte("inline\x00arg")},
			{IsRef: true, Ref: oid(1, 2, 300, 2)},
			{Data: bytes.Repeat([]byte{0xff}, 200)},
		},
		NumReturns:     2,
		Resources:      Resources{"CPU": 0.5, "GPU": 1, "memory": 1 << 30, "custom/tpu": 1e-9},
		MaxRetries:     -1,
		RetryAppErrors: true,
		Strategy:       Strategy{Kind: StrategyPlacementGroup, Node: 4, Soft: true, Group: 77, Bundle: -1},
		Dedicated:      true,
		MaxConcurrency: 16,
		MaxRestarts:    math.MaxInt32,
		ActorName:      "counter",
		Namespace:      "ns",
	}
}

// sampleErr is a three-deep chain: an upstream failure caused by a panic
// caused by an application error.
func sampleErr() *TaskError {
	return &TaskError{
		Kind: ErrKindUpstream, Task: TaskID{3, 7, 10}, Name: "g", Node: 3, Pid: 4242, Attempt: 1,
		Message: "argument 0 failed",
		Cause: &TaskError{
			Kind: ErrKindPanic, Task: TaskID{1, 2, 300}, Name: "f", Node: 1, Pid: -1, Attempt: 3,
			Message: "runtime error: index out of range [3] with length 3",
			Stack:   "goroutine 7 [running]:\nexample.com/pkg.f(...)\n\t/src/f.go:12 +0x1d\n",
			Cause: &TaskError{
				Kind: ErrKindApp, Task: TaskID{1, 2, 299}, Name: "h", Node: math.MaxUint32, Pid: math.MaxInt64,
				Attempt: math.MaxUint32, Message: "open /x: no such file or directory", TypeName: "*fs.PathError",
			},
		},
	}
}

func inlineValue(s string) Value {
	return Value{Data: []byte(s), Size: uint64(len(s)), Contained: []ObjectID{oid(1, 1, 1, 1), oid(9, 9, 1<<63, 0)}}
}

func storeValue() Value {
	return Value{InStore: true, Size: 1 << 40, Node: 5, Off: 1 << 33}
}

// sampleMsgs returns messages of every type, in the normal form that
// decoding produces, so that a round trip must give back exactly them.
func sampleMsgs() []Msg {
	spec := sampleSpec()
	ids := []ObjectID{oid(1, 2, 3, 4), {}, oid(math.MaxUint32, math.MaxUint32, math.MaxUint64, math.MaxUint32)}
	node := NodeInfo{
		ID: 2, Addr: "10.0.0.2:7000", Hostname: "gpu-2", Alive: true,
		Total:     Resources{"CPU": 64, "GPU": 8},
		Available: Resources{"CPU": 12.5, "GPU": 0},
		Labels:    map[string]string{"zone": "a", "rack": "17"},
	}
	return []Msg{
		&Hello{Role: RoleWorker, Pid: 12345, Worker: 3, Job: 1<<33 + 1, BinaryPath: "/opt/app/bin/train",
			BinaryHash: "sha256:abcd", RegistryHash: "sha256:ef01",
			Registry: []string{"example.com/pkg.Counter", "example.com/pkg.f", ""},
			Args:     []string{"-epochs=3", "--", "data dir/with space"}},
		&Hello{Role: RoleDriver, Pid: -1},
		&Welcome{Node: 2, Proc: math.MaxUint32, ClusterID: "c-1", HeadAddr: "10.0.0.1:7000", StoreDir: "/dev/shm/raygo",
			ArenaSize: 8 << 30, InlineMax: 100 << 10, Config: map[string]string{"log": "debug", "empty": ""}},
		&Welcome{Err: "registry mismatch: worker lacks example.com/pkg.f"},
		&Submit{Spec: spec},
		&Put{ID: oid(3, 7, 11, 0), Value: inlineValue("hello")},
		&Put{ID: oid(3, 7, 12, 0), Value: storeValue()},
		&Refs{IDs: ids, Deltas: []int32{1, -1, math.MinInt32}},
		&Subscribe{IDs: ids},
		&Object{ID: oid(1, 2, 3, 1), Value: inlineValue("\x00\x01\x02")},
		&Object{ID: oid(1, 2, 3, 2), Err: sampleErr()},
		&Object{ID: oid(1, 2, 3, 3), Value: Value{InStore: true, Size: 1 << 30, Node: 5, Spilled: "/tmp/raygo-spill-c-5/o1.2.3.3", Contained: ids}},
		&Cancel{Task: TaskID{1, 2, 3}, Force: true},
		&Exec{Spec: spec, Attempt: 2,
			Args: []ArgValue{{ID: oid(1, 2, 300, 2), Value: storeValue()}, {Value: inlineValue("x")}},
			Env:  map[string]string{"CUDA_VISIBLE_DEVICES": "0,1"}, Lease: 7},
		&Done{Task: TaskID{3, 7, 10}, Attempt: 1, Micros: 1234, Results: []Value{inlineValue("r1"), storeValue()}},
		&Done{Task: TaskID{3, 7, 10}, Attempt: 4, Err: sampleErr()},
		&Req{ID: math.MaxUint64, Op: OpPull, Body: []byte("object id, offset, length")},
		&Rep{ID: 1, Err: "no such key", Code: CodeNotFound, Body: []byte{0}},
		&Forward{Spec: spec, Attempt: 3},
		&Free{IDs: ids},
		&NodeHello{Addr: "10.0.0.2:7000", Hostname: "gpu-2", Pid: 99, Resources: Resources{"CPU": 64, "memory": 5e11},
			Labels: map[string]string{"zone": "a"}, Version: "v0.1.0"},
		&View{Nodes: []NodeInfo{node, {ID: 3, Addr: "10.0.0.3:7000"}}, Jobs: []Job{
			{ID: 12, BinaryPath: "/opt/app/bin/train", BinaryHash: "sha256:abcd", RegistryHash: "sha256:ef01",
				Registry: []string{"example.com/pkg.f"}, Args: []string{"-v"}, Env: map[string]string{"OMP_NUM_THREADS": "8"}},
			{ID: 13},
		}},
		&Load{Available: Resources{"CPU": 3.25}, Tasks: 10, Actors: 2, Objects: 1 << 20, StoreUsed: 1 << 35},
		&KillActor{Actor: ActorID{2, 1, 9}, NoRestart: true},
		&Shutdown{Reason: "raygo stop"},
		&ActorDown{Actor: TaskID{1, 2, 3}, Restartable: true, Err: sampleErr()},
	}
}

// minimalMsgs returns, for every list in every message, a message holding
// one element with every field zero: the smallest element the decoder must
// accept, which tests the minimum sizes that counts are checked against.
func minimalMsgs() []Msg {
	return []Msg{
		&Hello{Registry: []string{""}},
		&Welcome{Config: map[string]string{"": ""}},
		&Submit{Spec: TaskSpec{Args: []Arg{{}}}},
		&Submit{Spec: TaskSpec{Args: []Arg{{IsRef: true}}}},
		&Put{Value: Value{Contained: []ObjectID{{}}}},
		&Refs{IDs: []ObjectID{{}}, Deltas: []int32{0}},
		&Subscribe{IDs: []ObjectID{{}}},
		&Object{Err: &TaskError{}},
		&Exec{Args: []ArgValue{{}}},
		&Exec{Args: []ArgValue{{Value: Value{InStore: true}}}},
		&Exec{Args: []ArgValue{{Value: Value{InStore: true, Spilled: "/"}}}},
		&Exec{Env: map[string]string{"": ""}, Lease: 1 << 40},
		&Done{Results: []Value{{}}},
		&Done{Results: []Value{{}, {}, {}}},
		&Free{IDs: []ObjectID{{}}},
		&NodeHello{Resources: Resources{"": 0}, Labels: map[string]string{"": ""}},
		&View{Nodes: []NodeInfo{{}}},
		&View{Nodes: []NodeInfo{{}, {}, {}}},
		&View{Jobs: []Job{{}, {}, {}}},
		&View{Nodes: []NodeInfo{{}, {}}, Jobs: []Job{{}, {}}},
		&Load{Available: Resources{"": 0}},
	}
}

// zeroMsgs returns the zero value of every message type.
func zeroMsgs() []Msg {
	var ms []Msg
	for t := THello; t < tEnd; t++ {
		ms = append(ms, newMsg(t))
	}
	return ms
}

// newMsg makes an empty message of type t, of the concrete type the sample
// of that type has.
func newMsg(t Type) Msg {
	for _, s := range sampleMsgs() {
		if s.Type() == t {
			return reflect.New(reflect.TypeOf(s).Elem()).Interface().(Msg)
		}
	}
	panic(fmt.Sprintf("no sample of %v", t))
}

func encode(m Msg) []byte {
	var e Enc
	Append(&e, m)
	return e.Bytes()
}

func allMsgs() []Msg {
	ms := sampleMsgs()
	ms = append(ms, minimalMsgs()...)
	return append(ms, zeroMsgs()...)
}

func TestSamplesCoverEveryType(t *testing.T) {
	seen := map[Type]bool{}
	for _, m := range sampleMsgs() {
		seen[m.Type()] = true
	}
	for ty := THello; ty < tEnd; ty++ {
		if !seen[ty] {
			t.Errorf("no sample message of type %v", ty)
		}
	}
}

// TestSamplesCoverEveryField checks that every field of every struct in the
// messages is set in at least one sample, so that a field added to a message
// but left out of its encoder or decoder fails TestRoundTrip.
func TestSamplesCoverEveryField(t *testing.T) {
	set := map[string]bool{} // "Type.Field" -> seen non-zero
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				key := v.Type().Name() + "." + v.Type().Field(i).Name
				set[key] = set[key] || !v.Field(i).IsZero()
				walk(v.Field(i))
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	for _, m := range sampleMsgs() {
		walk(reflect.ValueOf(m))
	}
	for key, ok := range set {
		if !ok {
			t.Errorf("no sample sets %s", key)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for i, m := range allMsgs() {
		t.Run(fmt.Sprintf("%d-%v", i, m.Type()), func(t *testing.T) {
			frame := encode(m)
			if Type(frame[0]) != m.Type() {
				t.Fatalf("type byte %d, want %d", frame[0], m.Type())
			}
			got, err := Decode(frame)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip changed the message:\n got %#v\nwant %#v", got, m)
			}
			// Encoding is a pure function of the message, except for map order.
			if again := encode(got); len(again) != len(frame) {
				t.Fatalf("re-encoded to %d bytes, first time %d", len(again), len(frame))
			}
		})
	}
}

// TestDecodeNormalForm checks what decoding does to values outside the
// normal form: fields the encoding leaves out, and empty slices and maps.
func TestDecodeNormalForm(t *testing.T) {
	cases := []struct {
		name    string
		in, out Msg
	}{
		{"empty slices and maps become nil",
			&Hello{Registry: []string{}},
			&Hello{}},
		{"empty map",
			&Welcome{Config: map[string]string{}},
			&Welcome{}},
		{"inline value: empty data is nil, Size is len(Data)",
			&Put{Value: Value{Data: []byte{}, Size: 99, Node: 4, Contained: []ObjectID{}}},
			&Put{}},
		{"store value: Data is not sent",
			&Put{Value: Value{InStore: true, Data: []byte("dropped"), Size: 7, Node: 4}},
			&Put{Value: Value{InStore: true, Size: 7, Node: 4}}},
		{"inline arg: Ref is not sent; ref arg: Data is not sent",
			&Submit{Spec: TaskSpec{Args: []Arg{{Ref: oid(1, 1, 1, 1), Data: []byte("a")}, {IsRef: true, Ref: oid(2, 2, 2, 2), Data: []byte("b")}, {Data: []byte{}}}}},
			&Submit{Spec: TaskSpec{Args: []Arg{{Data: []byte("a")}, {IsRef: true, Ref: oid(2, 2, 2, 2)}, {}}}}},
		{"inline value: Spilled is not sent",
			&Put{Value: Value{Data: []byte("a"), Spilled: "/x"}},
			&Put{Value: Value{Data: []byte("a"), Size: 1}}},
		{"empty body",
			&Req{ID: 1, Body: []byte{}},
			&Req{ID: 1}},
		{"extra deltas are not sent",
			&Refs{IDs: []ObjectID{{}}, Deltas: []int32{5, 6}},
			&Refs{IDs: []ObjectID{{}}, Deltas: []int32{5}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Decode(encode(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.out) {
				t.Fatalf("got %#v\nwant %#v", got, c.out)
			}
		})
	}
}

func chain(n int) *TaskError {
	var head *TaskError
	for i := n; i > 0; i-- {
		head = &TaskError{Kind: ErrKindUpstream, Task: TaskID{1, 1, uint64(i)}, Message: fmt.Sprint("level ", i), Cause: head}
	}
	return head
}

func chainLen(e *TaskError) int {
	n := 0
	for ; e != nil; e = e.Cause {
		n++
	}
	return n
}

func TestTaskErrorChain(t *testing.T) {
	got, err := Decode(encode(&Done{Err: sampleErr()}))
	if err != nil {
		t.Fatal(err)
	}
	e := got.(*Done).Err
	if chainLen(e) != 3 || e.Cause.Cause.TypeName != "*fs.PathError" || e.Cause.Stack == "" {
		t.Fatalf("chain not kept: %#v", e)
	}

	// The encoder stops at maxErrorDepth, so the decoder never sees more.
	got, err = Decode(encode(&Object{Err: chain(maxErrorDepth + 10)}))
	if err != nil {
		t.Fatal(err)
	}
	if n := chainLen(got.(*Object).Err); n != maxErrorDepth {
		t.Fatalf("long chain decoded to %d links, want %d", n, maxErrorDepth)
	}
	if !reflect.DeepEqual(got.(*Object).Err, chain(maxErrorDepth)) {
		t.Fatal("truncated chain differs from its first links")
	}

	// A hand-made frame with a deeper chain is refused.
	var enc Enc
	enc.U8(uint8(TObject))
	enc.ObjectID(ObjectID{})
	enc.Value(&Value{})
	for range maxErrorDepth + 1 {
		enc.Bool(true)
		enc.U8(ErrKindUpstream)
		enc.TaskID(TaskID{})
		enc.Str("")
		enc.Uvarint(0)
		enc.Varint(0)
		enc.Uvarint(0)
		enc.Str("")
		enc.Str("")
		enc.Str("")
	}
	enc.Bool(false)
	if _, err := Decode(enc.Bytes()); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "too deep") {
		t.Fatalf("deep chain: got %v, want a too-deep error wrapping ErrMalformed", err)
	}
}

func TestIDs(t *testing.T) {
	task := TaskID{Node: 1, Proc: 2, Seq: 3}
	if s := task.String(); s != "t1.2.3" {
		t.Errorf("TaskID.String = %q", s)
	}
	if task.IsZero() || !(TaskID{}).IsZero() {
		t.Error("IsZero wrong")
	}
	id := ObjectID{Task: task, Index: 4}
	if s := id.String(); s != "o1.2.3.4" {
		t.Errorf("ObjectID.String = %q", s)
	}
	if id.Owner() != 1 || id.FileName() != "o1.2.3.4" {
		t.Errorf("Owner %v, FileName %q", id.Owner(), id.FileName())
	}
}

func TestParseObjectID(t *testing.T) {
	for _, id := range []ObjectID{
		{},
		oid(1, 2, 3, 4),
		oid(math.MaxUint32, math.MaxUint32, math.MaxUint64, math.MaxUint32),
	} {
		got, err := ParseObjectID(id.String())
		if err != nil || got != id {
			t.Errorf("ParseObjectID(%q) = %v, %v; want %v", id.String(), got, err, id)
		}
	}
	for _, s := range []string{
		"",
		"o",
		"1.2.3.4",
		"t1.2.3.4",
		"o1.2.3",
		"o1.2.3.4.5",
		"o1..3.4",
		"o1.2.3.",
		"o1.2.x.4",
		"o-1.2.3.4",
		"o+1.2.3.4",
		"o 1.2.3.4",
		"o4294967296.2.3.4", // node out of range
		"o1.4294967296.3.4", // proc out of range
		"o1.2.3.4294967296", // index out of range
		"o1.2.18446744073709551616.4",
	} {
		if got, err := ParseObjectID(s); err == nil {
			t.Errorf("ParseObjectID(%q) = %v, want an error", s, got)
		} else if !strings.Contains(err.Error(), "object ID") {
			t.Errorf("ParseObjectID(%q): error %q does not say what failed", s, err)
		}
	}
}

func TestStrings(t *testing.T) {
	if THello.String() != "hello" || TShutdown.String() != "shutdown" || TKillActor.String() != "kill-actor" {
		t.Error("Type.String wrong")
	}
	if Type(0).String() != "type(0)" || tEnd.String() != fmt.Sprintf("type(%d)", tEnd) {
		t.Error("unknown Type.String wrong")
	}
	for ty := THello; ty < tEnd; ty++ {
		if strings.HasPrefix(ty.String(), "type(") {
			t.Errorf("type %d has no name", ty)
		}
	}
	if RoleNode.String() != "node" || Role(0).String() != "role(0)" {
		t.Error("Role.String wrong")
	}
}

func wantMalformed(t *testing.T, frame []byte, contains string) {
	t.Helper()
	m, err := Decode(frame)
	if err == nil {
		t.Fatalf("Decode(%x) = %#v, want an error", frame, m)
	}
	if m != nil {
		t.Errorf("Decode returned a message with its error: %#v", m)
	}
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("Decode(%x): %v does not wrap ErrMalformed", frame, err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("Decode(%x): error %q does not contain %q", frame, err, contains)
	}
}

func TestDecodeEmptyAndUnknown(t *testing.T) {
	wantMalformed(t, nil, "empty frame")
	wantMalformed(t, []byte{}, "empty frame")
	wantMalformed(t, []byte{0}, "unknown message type 0")
	wantMalformed(t, []byte{byte(tEnd), 1, 2, 3}, fmt.Sprint("unknown message type ", uint8(tEnd)))
	wantMalformed(t, []byte{0xff}, "unknown message type 255")
}

// TestDecodeTruncated cuts every sample frame at every length: each prefix
// must fail with ErrMalformed, and never panic.
func TestDecodeTruncated(t *testing.T) {
	for _, m := range allMsgs() {
		frame := encode(m)
		for i := 1; i < len(frame); i++ {
			p := bytes.Clone(frame[:i]) // no spare capacity to read past
			if got, err := Decode(p); err == nil {
				t.Fatalf("%v: prefix of %d/%d bytes decoded to %#v", m.Type(), i, len(frame), got)
			} else if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%v: prefix of %d/%d bytes: %v does not wrap ErrMalformed", m.Type(), i, len(frame), err)
			}
		}
	}
}

func TestDecodeTrailingBytes(t *testing.T) {
	for _, m := range allMsgs() {
		frame := append(encode(m), 0)
		wantMalformed(t, frame, "1 trailing bytes")
	}
}

func TestDecodeBadFields(t *testing.T) {
	cases := []struct {
		name  string
		frame func(e *Enc)
		want  string
	}{
		{"bool not 0 or 1", func(e *Enc) { e.U8(uint8(TCancel)); e.TaskID(TaskID{}); e.U8(2) }, "bad bool"},
		{"uvarint overflow", func(e *Enc) {
			e.U8(uint8(TReq))
			for range 11 {
				e.U8(0xff)
			}
		}, "bad uvarint"},
		{"node out of range", func(e *Enc) { e.U8(uint8(TCancel)); e.Uvarint(1 << 32); e.Uvarint(0); e.Uvarint(0); e.Bool(false) }, "node out of range"},
		{"int32 out of range", func(e *Enc) {
			e.U8(uint8(TRefs))
			e.Uvarint(1)
			e.ObjectID(ObjectID{})
			e.Varint(1 << 31)
		}, "delta out of range"},
		{"unknown task kind", func(e *Enc) {
			e.U8(uint8(TSubmit))
			e.Spec(&TaskSpec{Kind: KindActorCall + 1}) // the encoder does not check
		}, "unknown task kind"},
		{"string longer than frame", func(e *Enc) { e.U8(uint8(TShutdown)); e.Uvarint(5); e.b = append(e.b, "abc"...) }, "count 5 larger than frame"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e Enc
			c.frame(&e)
			wantMalformed(t, e.Bytes(), c.want)
		})
	}
}

type hostile struct {
	frame []byte
	count uint64 // what the frame claims
}

// hostileFrames return frames whose first count claims far more elements
// than any frame could hold, one per kind of counted field.
func hostileFrames() map[string]hostile {
	huge := []uint64{1<<64 - 1, 1 << 62, 1 << 40, 1 << 31, 1000}
	out := map[string]hostile{}
	add := func(name string, prefix func(e *Enc)) {
		for _, n := range huge {
			var e Enc
			prefix(&e)
			e.Uvarint(n)
			e.b = append(e.b, make([]byte, 64)...) // a little body, far too little
			out[fmt.Sprintf("%s/%d", name, n)] = hostile{e.Bytes(), n}
		}
	}
	add("subscribe ids", func(e *Enc) { e.U8(uint8(TSubscribe)) })
	add("free ids", func(e *Enc) { e.U8(uint8(TFree)) })
	add("refs", func(e *Enc) { e.U8(uint8(TRefs)) })
	add("view nodes", func(e *Enc) { e.U8(uint8(TView)) })
	add("view jobs", func(e *Enc) { e.U8(uint8(TView)); e.Uvarint(0) })
	add("load resources", func(e *Enc) { e.U8(uint8(TLoad)) })
	add("shutdown string", func(e *Enc) { e.U8(uint8(TShutdown)) })
	add("hello registry", func(e *Enc) {
		e.U8(uint8(THello))
		e.U8(0)
		e.Varint(0)
		e.Uvarint(0)
		e.Uvarint(0)
		e.Str("")
		e.Str("")
		e.Str("")
	})
	add("welcome config", func(e *Enc) {
		e.U8(uint8(TWelcome))
		e.b = append(e.b, 0, 0, 0, 0, 0, 0, 0, 0)
	})
	add("submit args", func(e *Enc) {
		e.U8(uint8(TSubmit))
		e.TaskID(TaskID{})
		e.Uvarint(0)
		e.U8(0)
		e.Str("")
		e.Str("")
		e.TaskID(TaskID{})
		e.Str("")
	})
	add("done results", func(e *Enc) { e.U8(uint8(TDone)); e.TaskID(TaskID{}); e.Uvarint(0) })
	add("spilled path", func(e *Enc) {
		e.U8(uint8(TObject))
		e.ObjectID(ObjectID{})
		e.U8(valueSpilled)
		e.Uvarint(1)
		e.Uvarint(0)
		e.Uvarint(0)
	})
	add("req body", func(e *Enc) { e.U8(uint8(TReq)); e.Uvarint(0); e.U8(0) })
	return out
}

func TestDecodeHostileCount(t *testing.T) {
	frames := hostileFrames()
	for name, h := range frames {
		t.Run(name, func(t *testing.T) {
			// The error must come from the count check, not from a field
			// before it: that shows the frame reaches the count.
			wantMalformed(t, h.frame, fmt.Sprintf("count %d larger than frame", h.count))
		})
	}

	// None of them may allocate more than a few small objects (the message,
	// the decoder, the error) whatever count they claim.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const runs = 100
	for range runs {
		for _, h := range frames {
			Decode(h.frame)
		}
	}
	runtime.ReadMemStats(&after)
	perFrame := (after.TotalAlloc - before.TotalAlloc) / uint64(runs*len(frames))
	if perFrame > 4<<10 {
		t.Fatalf("decoding a hostile frame allocates %d bytes on average", perFrame)
	}
	frame := frames["subscribe ids/18446744073709551615"].frame
	if a := testing.AllocsPerRun(100, func() { Decode(frame) }); a > 20 {
		t.Fatalf("decoding a hostile count took %v allocations", a)
	}
}
