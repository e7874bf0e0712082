package wire

import (
	"errors"
	"io"
	"math"
	"net"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary frames to Decode. It must never panic, every
// error must wrap ErrMalformed, and a frame that decodes must survive a
// second round trip unchanged. Seeds are valid frames of every type plus the
// files in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, m := range allMsgs() {
		f.Add(encode(m))
	}
	for _, h := range hostileFrames() {
		f.Add(h.frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := Decode(frame)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned %#v with error %v", m, err)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again := encode(m)
		m2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded %#v does not decode: %v", m, err)
		}
		if !equalBits(reflect.ValueOf(m), reflect.ValueOf(m2)) {
			t.Fatalf("round trip changed the message:\nfirst  %#v\nsecond %#v", m, m2)
		}
	})
}

// equalBits is reflect.DeepEqual except that floats compare by their bits,
// so that a NaN a fuzzed frame carries equals itself.
func equalBits(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		return math.Float64bits(a.Float()) == math.Float64bits(b.Float())
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalBits(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !equalBits(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equalBits(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for it := a.MapRange(); it.Next(); {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !equalBits(it.Value(), bv) {
				return false
			}
		}
		return true
	default:
		return a.Equal(b)
	}
}

// FuzzHandshake plays a client that sends arbitrary bytes after reading the
// server's greeting. Without the secret no reply can succeed: the server
// must refuse it, without panicking and without waiting for the timeout
// when the client has closed.
func FuzzHandshake(f *testing.F) {
	sn := make([]byte, nonceSize) // the fuzzer cannot know the real nonce
	f.Add([]byte{})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add(greeting(Version, nil))
	f.Add(clientReply(testSecret, Version, RoleDriver, sn, nonce()))
	f.Add(clientReply(testSecret, Version+1, RoleDriver, sn, nonce()))
	f.Fuzz(func(t *testing.T, reply []byte) {
		client, server := net.Pipe()
		done := make(chan struct{}, 2)
		go func() { // read what the server says, so its writes never block
			io.Copy(io.Discard, client)
			done <- struct{}{}
		}()
		go func() {
			client.Write(reply) // returns early when the server closes
			client.Close()
			done <- struct{}{}
		}()
		_, err := ServerHandshake(server, testSecret)
		server.Close()
		<-done
		<-done
		if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrVersion) {
			t.Fatalf("server accepted or failed oddly on %q: %v", reply, err)
		}
	})
}
