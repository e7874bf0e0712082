/*
 * Shared by the fake CUDA runtime and the fake NCCL that the tests of
 * package nccl build. A fake stream counts the operations enqueued on it
 * that have not finished: the fake NCCL raises the count when it enqueues
 * an operation and lowers it when its worker thread has run it, and the
 * fake runtime's cudaStreamQuery reports cudaErrorNotReady while it is
 * above zero.
 */
#ifndef RAYGO_FAKE_H
#define RAYGO_FAKE_H

#define FAKE_STREAM_MAGIC 0x57524541u /* "STRE" */

struct fake_stream {
	unsigned magic;
	int pending;
};

static inline void fake_stream_add(struct fake_stream *s, int n) {
	if (s != 0)
		__atomic_add_fetch(&s->pending, n, __ATOMIC_SEQ_CST);
}

#endif
