/*
 * A fake CUDA runtime for the tests of package nccl: "device memory" is
 * host memory from malloc, copies are memcpy, and a stream is a counter of
 * the fake NCCL operations enqueued on it (fake.h). Every copy first waits
 * for the stream's pending operations, as a real stream orders its work.
 *
 * FAKECUDA_DEVICES sets the number of devices (default 2; 0 makes
 * cudaGetDeviceCount fail with cudaErrorNoDevice).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake.h"

typedef int cudaError_t;
typedef struct fake_stream *cudaStream_t;

enum {
	cudaSuccess = 0,
	cudaErrorInvalidValue = 1,
	cudaErrorMemoryAllocation = 2,
	cudaErrorNoDevice = 100,
	cudaErrorInvalidDevice = 101,
	cudaErrorInvalidResourceHandle = 400,
	cudaErrorNotReady = 600,
};

static struct fake_stream default_stream = {FAKE_STREAM_MAGIC, 0};
static __thread int current_device;

static int devices(void) {
	const char *s = getenv("FAKECUDA_DEVICES");
	return s ? atoi(s) : 2;
}

static struct fake_stream *stream_of(cudaStream_t s) { return s ? s : &default_stream; }

static void drain(struct fake_stream *s) {
	for (int i = 0; __atomic_load_n(&s->pending, __ATOMIC_SEQ_CST) > 0; i++) {
		if (i < 100) {
			sched_yield();
		} else {
			struct timespec ts = {0, 50000};
			nanosleep(&ts, 0);
		}
	}
}

cudaError_t cudaGetDeviceCount(int *n) {
	int d = devices();
	if (d <= 0) {
		*n = 0;
		return cudaErrorNoDevice;
	}
	*n = d;
	return cudaSuccess;
}

cudaError_t cudaSetDevice(int d) {
	if (d < 0 || d >= devices())
		return cudaErrorInvalidDevice;
	current_device = d;
	return cudaSuccess;
}

cudaError_t cudaGetDevice(int *d) {
	*d = current_device;
	return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t n) {
	*p = malloc(n ? n : 1);
	return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFree(void *p) {
	free(p);
	return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, int kind) {
	if (kind < 0 || kind > 4)
		return cudaErrorInvalidValue;
	drain(&default_stream);
	if (n)
		memmove(dst, src, n);
	return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, int kind, cudaStream_t s) {
	if (kind < 0 || kind > 4)
		return cudaErrorInvalidValue;
	if (s && s->magic != FAKE_STREAM_MAGIC)
		return cudaErrorInvalidResourceHandle;
	drain(stream_of(s));
	if (n)
		memmove(dst, src, n);
	return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) {
	struct fake_stream *f = calloc(1, sizeof *f);
	if (!f)
		return cudaErrorMemoryAllocation;
	f->magic = FAKE_STREAM_MAGIC;
	*s = f;
	return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
	if (!s || s->magic != FAKE_STREAM_MAGIC)
		return cudaErrorInvalidResourceHandle;
	/* A stream with work left is freed once the work is done; the fake
	 * keeps it instead, since the fake NCCL may still lower its count. */
	if (__atomic_load_n(&s->pending, __ATOMIC_SEQ_CST) == 0) {
		s->magic = 0;
		free(s);
	}
	return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
	if (s && s->magic != FAKE_STREAM_MAGIC)
		return cudaErrorInvalidResourceHandle;
	drain(stream_of(s));
	return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
	if (s && s->magic != FAKE_STREAM_MAGIC)
		return cudaErrorInvalidResourceHandle;
	return __atomic_load_n(&stream_of(s)->pending, __ATOMIC_SEQ_CST) > 0 ? cudaErrorNotReady : cudaSuccess;
}

const char *cudaGetErrorString(cudaError_t e) {
	switch (e) {
	case cudaSuccess:
		return "no error";
	case cudaErrorInvalidValue:
		return "invalid argument";
	case cudaErrorMemoryAllocation:
		return "out of memory";
	case cudaErrorNoDevice:
		return "no CUDA-capable device is detected";
	case cudaErrorInvalidDevice:
		return "invalid device ordinal";
	case cudaErrorInvalidResourceHandle:
		return "invalid resource handle";
	case cudaErrorNotReady:
		return "device not ready";
	}
	return "unrecognized error code";
}
