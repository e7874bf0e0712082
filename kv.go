package raygo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/wire"
)

// ErrKeyNotFound is returned by KVGet for a missing key.
var ErrKeyNotFound = errors.New("raygo: key not found")

// ErrKeyExists is returned by KVPut without overwrite for a key that is
// already set.
var ErrKeyExists = errors.New("raygo: key exists")

// KVPut stores value under key in the cluster's key-value store (on the
// head). Unless overwrite, an existing key is an error.
func KVPut(ctx context.Context, key string, value []byte, overwrite bool) error {
	_, err := kvCall(ctx, wire.OpKVPut, func(e *wire.Enc) { e.Str(key); e.Blob(value); e.Bool(overwrite) })
	return err
}

// KVGet returns the value stored under key, or ErrKeyNotFound.
func KVGet(ctx context.Context, key string) ([]byte, error) {
	return kvCall(ctx, wire.OpKVGet, func(e *wire.Enc) { e.Str(key); e.Uvarint(0) })
}

// KVWait waits until key exists and returns its value; ctx's deadline
// bounds the wait (no deadline: one hour).
func KVWait(ctx context.Context, key string) ([]byte, error) {
	timeout := time.Hour
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return nil, fmt.Errorf("raygo: wait for key %q: %w", key, context.DeadlineExceeded)
		}
	}
	return kvCall(ctx, wire.OpKVWait, func(e *wire.Enc) { e.Str(key); e.Uvarint(uint64(timeout / time.Millisecond)) })
}

// KVList lists the keys starting with prefix, sorted.
func KVList(ctx context.Context, prefix string) ([]string, error) {
	body, err := kvCall(ctx, wire.OpKVList, func(e *wire.Enc) { e.Str(prefix) })
	if err != nil {
		return nil, err
	}
	d := wire.NewDec(body)
	keys := d.Strs()
	return keys, d.Err()
}

// KVDelete removes key; it reports whether the key existed.
func KVDelete(ctx context.Context, key string) (bool, error) {
	body, err := kvCall(ctx, wire.OpKVDelete, func(e *wire.Enc) { e.Str(key) })
	if err != nil {
		return false, err
	}
	d := wire.NewDec(body)
	ok := d.Bool()
	return ok, d.Err()
}

func kvCall(ctx context.Context, op wire.Op, f func(e *wire.Enc)) ([]byte, error) {
	c, err := client()
	if err != nil {
		return nil, err
	}
	body, err := c.Request(ctx, op, encodeBody(f))
	if errors.Is(err, runtime.ErrNotFound) {
		return nil, fmt.Errorf("%w: %v", ErrKeyNotFound, err)
	}
	if op == wire.OpKVPut && errors.Is(err, runtime.ErrExists) {
		return nil, fmt.Errorf("%w: %v", ErrKeyExists, err)
	}
	if errors.Is(err, runtime.ErrTimeout) {
		return nil, fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	if err != nil {
		return nil, convert(err)
	}
	return body, nil
}
