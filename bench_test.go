package raygo_test

import (
	"context"
	"testing"

	"github.com/raygo/raygo"
)

// Benchmarks of the basic operations on an embedded cluster. The full set,
// matched to Ray's names, is `raygo microbenchmark`; see
// benchmarks/RESULTS.md for recorded numbers.

func benchInit(b *testing.B) context.Context {
	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raygo.Shutdown(ctx) })
	return ctx
}

func BenchmarkTaskSync(b *testing.B) {
	ctx := benchInit(b)
	for i := 0; i < b.N; i++ {
		if _, err := add.Remote(raygo.Val(i), raygo.Val(1)).Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTasksBatch1000(b *testing.B) {
	ctx := benchInit(b)
	refs := make([]raygo.Ref[int], 1000)
	b.ResetTimer()
	for n := 0; n < b.N; n += len(refs) {
		for i := range refs {
			refs[i] = add.Remote(raygo.Val(i), raygo.Val(1))
		}
		if _, err := raygo.GetAll(ctx, refs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkActorCallSync(b *testing.B) {
	ctx := benchInit(b)
	c := counterType.Remote(raygo.Val(int64(0)))
	for i := 0; i < b.N; i++ {
		if _, err := counterAdd.Remote(c, raygo.Val(int64(1))).Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutSmall(b *testing.B) {
	ctx := benchInit(b)
	for i := 0; i < b.N; i++ {
		if _, err := raygo.Put(ctx, i); err != nil {
			b.Fatal(err)
		}
	}
}
