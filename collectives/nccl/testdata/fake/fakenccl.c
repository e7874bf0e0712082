/*
 * A fake libnccl.so.2 for the tests of package nccl. It exports the
 * symbols package nccl resolves, with NCCL's signatures, and really
 * performs the collectives among the ranks of a communicator, whether they
 * are threads of one process or separate processes.
 *
 * The unique id holds "FAKENCCL" and the path of a file in /dev/shm that
 * every rank maps: a header (init count, flags, a barrier), one slot per
 * rank through which collectives move in pieces, and one ring per ordered
 * pair of ranks for ncclSend/ncclRecv. Each communicator has a worker
 * thread that runs its operations in order; an operation raises the
 * pending count of its fake stream (fake.h) when enqueued and lowers it
 * when done, so cudaStreamQuery of the fake runtime reports it.
 *
 * Every rank writes a header describing its call into its slot, and each
 * collective checks that all ranks made the same call (kind, count, type,
 * reduction, root, sequence number); a mismatch is reported on stderr and
 * as an asynchronous ncclInvalidUsage error. Each p2p message carries its
 * length, which the receiver checks the same way.
 *
 * Environment, read at ncclCommInitRank (ncclGetVersion reads the first):
 *   FAKENCCL_VERSION          the version code (default 22105, 2.21.5);
 *                             below 21000 there is no bfloat16 or avg
 *   FAKENCCL_FAIL_INIT_RANK   this rank's init fails (ncclSystemError) and
 *                             the others' fail with ncclRemoteError
 *   FAKENCCL_INIT_TIMEOUT_MS  how long init waits for the others (60000)
 *   FAKENCCL_ASYNC_ERROR_AT   the n-th operation (from 1) on a
 *   FAKENCCL_ASYNC_ERROR_RANK communicator's rank (default 0) sets the
 *                             asynchronous error ncclSystemError and hangs
 *                             until the communicator is aborted
 *
 * Built with -DFAKE_OMIT_BROADCAST it lacks ncclBroadcast.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fake.h"

typedef enum {
	ncclSuccess = 0,
	ncclUnhandledCudaError = 1,
	ncclSystemError = 2,
	ncclInternalError = 3,
	ncclInvalidArgument = 4,
	ncclInvalidUsage = 5,
	ncclRemoteError = 6,
	ncclInProgress = 7,
} ncclResult_t;

typedef struct {
	char internal[128];
} ncclUniqueId;

typedef struct fcomm *ncclComm_t;
typedef struct fake_stream *cudaStream_t;

enum { SUM, PROD, MAX, MIN, AVG };
enum { T_I8, T_U8, T_I32, T_U32, T_I64, T_U64, T_F16, T_F32, T_F64, T_BF16 };
static const size_t esize[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};

enum { OP_ALLREDUCE = 1, OP_REDUCE, OP_BROADCAST, OP_ALLGATHER, OP_REDUCESCATTER, OP_SEND, OP_RECV };
static const char *op_names[] = {"?", "ncclAllReduce", "ncclReduce", "ncclBroadcast", "ncclAllGather", "ncclReduceScatter", "ncclSend", "ncclRecv"};

#define ID_MAGIC "FAKENCCL"
#define PAGE 4096
#define SLOT_BYTES (256 << 10)
#define SLOT_HDR 64
#define SLOT_STRIDE (SLOT_HDR + SLOT_BYTES)
#define MBOX_BYTES (64 << 10)
#define P2P_MAGIC 0x5032504b41464bULL

struct shared {
	int32_t nranks;
	int32_t joined;
	int32_t failed;
	int32_t aborted;
	int32_t bar_count;
	int32_t bar_sense;
};

struct slot_hdr {
	int32_t kind, dtype, redop, root;
	uint64_t count, seq;
};

struct mbox {
	uint64_t head;
	char pad1[56];
	uint64_t tail;
	char pad2[56];
	char data[MBOX_BYTES];
};

struct op {
	int kind;
	const char *send;
	char *recv;
	size_t count;
	int dtype, redop, root, peer;
	struct fake_stream *stream;
};

struct task {
	struct task *next;
	int nops;
	int sync; /* the caller waits for done and frees the task */
	int done;
	struct op *ops;
};

struct fcomm {
	struct shared *sh;
	char *base;
	size_t maplen;
	int rank, nranks, sense, version;
	uint64_t seq, opcount, fail_at;
	int abort;     /* set by ncclCommAbort */
	int async_err; /* the first asynchronous error */
	pthread_t worker;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct task *head, *tail;
	int stop;
};

/* ---- small helpers ---- */

static int version(void) {
	const char *s = getenv("FAKENCCL_VERSION");
	return s ? atoi(s) : 22105;
}

static long envl(const char *name, long def) {
	const char *s = getenv(name);
	return s && *s ? atol(s) : def;
}

static void backoff(int *i) {
	if (++*i < 200) {
		sched_yield();
	} else {
		struct timespec ts = {0, 50000};
		nanosleep(&ts, 0);
	}
}

static void set_async(struct fcomm *c, int r) {
	int zero = 0;
	__atomic_compare_exchange_n(&c->async_err, &zero, r, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static int aborted(struct fcomm *c) { return __atomic_load_n(&c->abort, __ATOMIC_SEQ_CST); }
static int remote_aborted(struct fcomm *c) { return __atomic_load_n(&c->sh->aborted, __ATOMIC_SEQ_CST); }

/* WAIT_UNTIL waits for cond, returning -1 from the enclosing function if
 * the communicator is aborted. A peer's abort makes it an asynchronous
 * ncclRemoteError, unless cond came true before the peer aborted. */
#define WAIT_UNTIL(c, cond)                                         \
	do {                                                            \
		int i_ = 0;                                                 \
		while (!(cond)) {                                           \
			if (aborted(c))                                         \
				return -1;                                          \
			if (remote_aborted(c) && !(cond))                       \
				set_async((c), ncclRemoteError);                    \
			backoff(&i_);                                           \
		}                                                           \
	} while (0)

/* stall hangs until the communicator is aborted, as NCCL's kernels do
 * after an asynchronous error. */
static int stall(struct fcomm *c) {
	WAIT_UNTIL(c, 0);
	return -1;
}

static struct slot_hdr *hdr(struct fcomm *c, int r) { return (struct slot_hdr *)(c->base + PAGE + (size_t)r * SLOT_STRIDE); }
static char *slot(struct fcomm *c, int r) { return c->base + PAGE + (size_t)r * SLOT_STRIDE + SLOT_HDR; }
static struct mbox *mbox(struct fcomm *c, int from, int to) {
	return (struct mbox *)(c->base + PAGE + (size_t)c->nranks * SLOT_STRIDE + ((size_t)from * c->nranks + to) * sizeof(struct mbox));
}
static size_t shared_size(int n) { return PAGE + (size_t)n * SLOT_STRIDE + (size_t)n * n * sizeof(struct mbox); }
static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

static int barrier(struct fcomm *c) {
	struct shared *sh = c->sh;
	int mine = c->sense ^= 1;
	if (__atomic_add_fetch(&sh->bar_count, 1, __ATOMIC_SEQ_CST) == c->nranks) {
		__atomic_store_n(&sh->bar_count, 0, __ATOMIC_SEQ_CST);
		__atomic_store_n(&sh->bar_sense, mine, __ATOMIC_SEQ_CST);
		return 0;
	}
	WAIT_UNTIL(c, __atomic_load_n(&sh->bar_sense, __ATOMIC_SEQ_CST) == mine);
	return 0;
}

/* ---- element types and reductions ---- */

static float h2f(uint16_t h) {
	uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	if (exp == 0x1f) {
		bits = sign | 0xffu << 23 | man << 13;
	} else if (exp == 0) {
		if (man == 0) {
			bits = sign;
		} else {
			uint32_t e = 127 - 15 + 1;
			while (!(man & 0x400)) {
				man <<= 1;
				e--;
			}
			man &= 0x3ff;
			bits = sign | e << 23 | man << 13;
		}
	} else {
		bits = sign | (exp + 127 - 15) << 23 | man << 13;
	}
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

static uint16_t f2h(float f) {
	uint32_t b;
	memcpy(&b, &f, 4);
	uint16_t sign = (b >> 16) & 0x8000;
	int32_t exp = (b >> 23) & 0xff;
	uint32_t man = b & 0x7fffff;
	if (exp == 0xff)
		return sign | (man ? 0x7e00 : 0x7c00);
	int32_t e = exp - 127 + 15;
	if (e >= 0x1f)
		return sign | 0x7c00;
	if (e <= 0) {
		if (e < -10)
			return sign;
		man |= 0x800000;
		uint32_t shift = 14 - e, half = 1u << (shift - 1), rest = man & ((1u << shift) - 1), m = man >> shift;
		if (rest > half || (rest == half && (m & 1)))
			m++;
		return sign | m;
	}
	uint32_t m = man >> 13, rest = man & 0x1fff, h = (uint32_t)e << 10 | m;
	if (rest > 0x1000 || (rest == 0x1000 && (m & 1)))
		h++;
	return sign | h;
}

static float b2f(uint16_t h) {
	uint32_t bits = (uint32_t)h << 16;
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

static uint16_t f2b(float f) {
	uint32_t b;
	memcpy(&b, &f, 4);
	if ((b & 0x7fffffff) > 0x7f800000)
		return (b >> 16) | 0x40;
	b += 0x7fff + ((b >> 16) & 1);
	return b >> 16;
}

#define RED_INT(T, U)                                         \
	{                                                         \
		T *d = dst;                                           \
		const T *s = src;                                     \
		for (size_t i = 0; i < n; i++) {                      \
			T a = d[i], b = s[i];                             \
			switch (op) {                                     \
			case SUM: d[i] = (T)((U)a + (U)b); break;         \
			case PROD: d[i] = (T)((U)a * (U)b); break;        \
			case MIN: d[i] = a < b ? a : b; break;            \
			case MAX: d[i] = a > b ? a : b; break;            \
			}                                                 \
		}                                                     \
	}                                                         \
	break

#define RED_FLT(T)                                    \
	{                                                 \
		T *d = dst;                                   \
		const T *s = src;                             \
		for (size_t i = 0; i < n; i++) {              \
			T a = d[i], b = s[i];                     \
			switch (op) {                             \
			case SUM: d[i] = a + b; break;            \
			case PROD: d[i] = a * b; break;           \
			case MIN: d[i] = a < b ? a : b; break;    \
			case MAX: d[i] = a > b ? a : b; break;    \
			}                                         \
		}                                             \
	}                                                 \
	break

#define RED_HALF(TO, FROM)                              \
	{                                                   \
		uint16_t *d = dst;                              \
		const uint16_t *s = src;                        \
		for (size_t i = 0; i < n; i++) {                \
			float a = TO(d[i]), b = TO(s[i]), r = a;    \
			switch (op) {                               \
			case SUM: r = a + b; break;                 \
			case PROD: r = a * b; break;                \
			case MIN: r = a < b ? a : b; break;         \
			case MAX: r = a > b ? a : b; break;         \
			}                                           \
			d[i] = FROM(r);                             \
		}                                               \
	}                                                   \
	break

/* reduce sets dst[i] = dst[i] op src[i], rounding to the type at once. */
static void reduce(int dt, int op, void *dst, const void *src, size_t n) {
	if (op == AVG)
		op = SUM;
	switch (dt) {
	case T_I8: RED_INT(int8_t, uint32_t);
	case T_U8: RED_INT(uint8_t, uint32_t);
	case T_I32: RED_INT(int32_t, uint32_t);
	case T_U32: RED_INT(uint32_t, uint32_t);
	case T_I64: RED_INT(int64_t, uint64_t);
	case T_U64: RED_INT(uint64_t, uint64_t);
	case T_F16: RED_HALF(h2f, f2h);
	case T_F32: RED_FLT(float);
	case T_F64: RED_FLT(double);
	case T_BF16: RED_HALF(b2f, f2b);
	}
}

#define DIV(T)                            \
	{                                     \
		T *d = buf;                       \
		for (size_t i = 0; i < n; i++)    \
			d[i] = (T)(d[i] / (T)k);      \
	}                                     \
	break

/* divide finishes ncclAvg: integers truncate toward zero. */
static void divide(int dt, void *buf, size_t n, int k) {
	switch (dt) {
	case T_I8: DIV(int8_t);
	case T_U8: DIV(uint8_t);
	case T_I32: DIV(int32_t);
	case T_U32: DIV(uint32_t);
	case T_I64: DIV(int64_t);
	case T_U64: DIV(uint64_t);
	case T_F32: DIV(float);
	case T_F64: DIV(double);
	case T_F16: {
		uint16_t *d = buf;
		for (size_t i = 0; i < n; i++)
			d[i] = f2h(h2f(d[i]) / (float)k);
		break;
	}
	case T_BF16: {
		uint16_t *d = buf;
		for (size_t i = 0; i < n; i++)
			d[i] = f2b(b2f(d[i]) / (float)k);
		break;
	}
	}
}

/* ---- collectives ---- */

static void put_hdr(struct fcomm *c, struct op *o) {
	struct slot_hdr *h = hdr(c, c->rank);
	h->kind = o->kind;
	h->dtype = o->dtype;
	h->redop = o->redop;
	h->root = o->root;
	h->count = o->count;
	h->seq = c->seq;
}

/* check compares this rank's call with rank 0's, after a barrier. */
static int check(struct fcomm *c) {
	struct slot_hdr *me = hdr(c, c->rank), *r0 = hdr(c, 0);
	if (me->kind == r0->kind && me->dtype == r0->dtype && me->redop == r0->redop && me->root == r0->root &&
	    me->count == r0->count && me->seq == r0->seq)
		return 0;
	fprintf(stderr,
	        "fake nccl: collective mismatch: rank %d called %s(count %llu, type %d, op %d, root %d) as call %llu, "
	        "rank 0 called %s(count %llu, type %d, op %d, root %d) as call %llu\n",
	        c->rank, op_names[me->kind], (unsigned long long)me->count, me->dtype, me->redop, me->root,
	        (unsigned long long)me->seq, op_names[r0->kind], (unsigned long long)r0->count, r0->dtype, r0->redop,
	        r0->root, (unsigned long long)r0->seq);
	set_async(c, ncclInvalidUsage);
	return stall(c);
}

/* run_coll moves a collective through the slots in pieces: every rank
 * writes its piece, a barrier, every rank reads what it needs, a barrier. */
static int run_coll(struct fcomm *c, struct op *o) {
	int n = c->nranks, me = c->rank;
	size_t es = esize[o->dtype], total = o->count * es;
	size_t piece = (o->kind == OP_REDUCESCATTER ? SLOT_BYTES / n : SLOT_BYTES) / es * es;
	size_t off = 0;
	int first = 1;
	c->seq++;
	do {
		size_t len = min_sz(piece, total - off);
		put_hdr(c, o);
		switch (o->kind) {
		case OP_ALLREDUCE:
		case OP_REDUCE:
		case OP_ALLGATHER:
			memcpy(slot(c, me), o->send + off, len);
			break;
		case OP_BROADCAST:
			if (me == o->root)
				memcpy(slot(c, me), o->send + off, len);
			break;
		case OP_REDUCESCATTER:
			for (int j = 0; j < n; j++)
				memcpy(slot(c, me) + j * piece, o->send + j * total + off, len);
			break;
		}
		if (barrier(c))
			return -1;
		if (first && check(c))
			return -1;
		switch (o->kind) {
		case OP_ALLREDUCE:
		case OP_REDUCE:
			if (o->kind == OP_ALLREDUCE || me == o->root) {
				char *d = o->recv + off;
				memcpy(d, slot(c, 0), len);
				for (int r = 1; r < n; r++)
					reduce(o->dtype, o->redop, d, slot(c, r), len / es);
				if (o->redop == AVG)
					divide(o->dtype, d, len / es, n);
			}
			break;
		case OP_BROADCAST:
			memmove(o->recv + off, slot(c, o->root), len);
			break;
		case OP_ALLGATHER:
			for (int r = 0; r < n; r++)
				memmove(o->recv + r * total + off, slot(c, r), len);
			break;
		case OP_REDUCESCATTER: {
			char *d = o->recv + off;
			memcpy(d, slot(c, 0) + me * piece, len);
			for (int r = 1; r < n; r++)
				reduce(o->dtype, o->redop, d, slot(c, r) + me * piece, len / es);
			if (o->redop == AVG)
				divide(o->dtype, d, len / es, n);
			break;
		}
		}
		if (barrier(c))
			return -1;
		off += len;
		first = 0;
	} while (off < total);
	return 0;
}

/* ---- point to point ---- */

struct p2p {
	uint64_t hdr[2]; /* magic, length in bytes */
	size_t done;     /* bytes moved, the header's 16 included */
	size_t total;
};

static void ring_put(struct mbox *m, uint64_t pos, const char *src, size_t n) {
	size_t at = pos % MBOX_BYTES, first = min_sz(n, MBOX_BYTES - at);
	memcpy(m->data + at, src, first);
	memcpy(m->data, src + first, n - first);
}

static void ring_get(struct mbox *m, uint64_t pos, char *dst, size_t n) {
	size_t at = pos % MBOX_BYTES, first = min_sz(n, MBOX_BYTES - at);
	memcpy(dst, m->data + at, first);
	memcpy(dst + first, m->data, n - first);
}

/* progress moves what fits of one send or receive; it returns the bytes
 * moved, or -1 after a length mismatch. */
static long progress(struct fcomm *c, struct op *o, struct p2p *p) {
	long moved = 0;
	if (o->kind == OP_SEND) {
		struct mbox *m = mbox(c, c->rank, o->peer);
		uint64_t head = m->head, tail = __atomic_load_n(&m->tail, __ATOMIC_ACQUIRE);
		size_t space = MBOX_BYTES - (size_t)(head - tail);
		while (space > 0 && p->done < p->total) {
			size_t n;
			if (p->done < sizeof p->hdr) {
				n = min_sz(space, sizeof p->hdr - p->done);
				ring_put(m, head, (char *)p->hdr + p->done, n);
			} else {
				n = min_sz(space, p->total - p->done);
				ring_put(m, head, o->send + (p->done - sizeof p->hdr), n);
			}
			head += n;
			space -= n;
			p->done += n;
			moved += n;
		}
		if (moved)
			__atomic_store_n(&m->head, head, __ATOMIC_RELEASE);
		return moved;
	}
	struct mbox *m = mbox(c, o->peer, c->rank);
	uint64_t tail = m->tail, head = __atomic_load_n(&m->head, __ATOMIC_ACQUIRE);
	size_t avail = (size_t)(head - tail);
	while (avail > 0 && p->done < p->total) {
		size_t n;
		if (p->done < sizeof p->hdr) {
			n = min_sz(avail, sizeof p->hdr - p->done);
			ring_get(m, tail, (char *)p->hdr + p->done, n);
		} else {
			n = min_sz(avail, p->total - p->done);
			ring_get(m, tail, o->recv + (p->done - sizeof p->hdr), n);
		}
		tail += n;
		avail -= n;
		p->done += n;
		moved += n;
		if (p->done == sizeof p->hdr && (p->hdr[0] != P2P_MAGIC || p->hdr[1] != p->total - sizeof p->hdr)) {
			fprintf(stderr, "fake nccl: rank %d: ncclRecv of %zu bytes from rank %d matched an ncclSend of %llu bytes\n",
			        c->rank, p->total - sizeof p->hdr, o->peer, (unsigned long long)p->hdr[1]);
			set_async(c, ncclInvalidUsage);
			return -1;
		}
	}
	if (moved)
		__atomic_store_n(&m->tail, tail, __ATOMIC_RELEASE);
	return moved;
}

/* run_p2p moves every send and receive of a group at once, so that a
 * group may hold sends and receives in any order. */
static int run_p2p(struct fcomm *c, struct op **ops, int n) {
	struct p2p *ps = calloc(n ? n : 1, sizeof *ps);
	int left = n, i = 0, retried = 0;
	for (int k = 0; k < n; k++) {
		ps[k].hdr[0] = P2P_MAGIC;
		ps[k].hdr[1] = ops[k]->count * esize[ops[k]->dtype];
		ps[k].total = sizeof ps[k].hdr + ps[k].hdr[1];
	}
	while (left > 0) {
		long moved = 0;
		for (int k = 0; k < n; k++) {
			if (ps[k].done == ps[k].total)
				continue;
			long m = progress(c, ops[k], &ps[k]);
			if (m < 0) {
				free(ps);
				return stall(c);
			}
			moved += m;
			if (ps[k].done == ps[k].total)
				left--;
		}
		if (moved) {
			i = 0;
			retried = 0;
			continue;
		}
		if (aborted(c)) {
			free(ps);
			return -1;
		}
		if (remote_aborted(c)) {
			/* What a peer wrote before it aborted is still read. */
			if (retried)
				set_async(c, ncclRemoteError);
			retried = 1;
			continue;
		}
		backoff(&i);
	}
	free(ps);
	return 0;
}

static int run_task(struct fcomm *c, struct task *t) {
	for (int k = 0; k < t->nops; k++) {
		if (++c->opcount == c->fail_at) {
			set_async(c, ncclSystemError);
			return stall(c);
		}
	}
	struct op *p2p[t->nops];
	int np = 0;
	for (int k = 0; k < t->nops; k++) {
		struct op *o = &t->ops[k];
		if (o->kind == OP_SEND || o->kind == OP_RECV) {
			p2p[np++] = o;
		} else if (run_coll(c, o)) {
			return -1;
		}
	}
	return np ? run_p2p(c, p2p, np) : 0;
}

/* ---- the worker and the queue ---- */

static void finish(struct task *t) {
	for (int k = 0; k < t->nops; k++)
		fake_stream_add(t->ops[k].stream, -1);
	if (t->sync)
		__atomic_store_n(&t->done, 1, __ATOMIC_SEQ_CST);
	else
		free(t);
}

static void *worker(void *arg) {
	struct fcomm *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (!c->head && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		struct task *t = c->head;
		if (t) {
			c->head = t->next;
			if (!c->head)
				c->tail = 0;
		}
		pthread_mutex_unlock(&c->mu);
		if (!t)
			return 0;
		if (!aborted(c))
			run_task(c, t);
		finish(t);
	}
}

static ncclResult_t submit(struct fcomm *c, struct op *ops, int n) {
	struct task *t = calloc(1, sizeof *t + n * sizeof *ops);
	if (!t)
		return ncclSystemError;
	t->ops = (struct op *)(t + 1);
	memcpy(t->ops, ops, n * sizeof *ops);
	t->nops = n;
	int sync = 0; /* t is the worker's once queued, unless sync */
	for (int k = 0; k < n; k++) {
		if (ops[k].stream)
			fake_stream_add(ops[k].stream, 1);
		else
			sync = 1; /* the default stream: wait here */
	}
	t->sync = sync;
	pthread_mutex_lock(&c->mu);
	if (c->stop) {
		pthread_mutex_unlock(&c->mu);
		for (int k = 0; k < n; k++)
			fake_stream_add(ops[k].stream, -1);
		free(t);
		return ncclInvalidUsage;
	}
	if (c->tail)
		c->tail->next = t;
	else
		c->head = t;
	c->tail = t;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (sync) {
		int i = 0;
		while (!__atomic_load_n(&t->done, __ATOMIC_SEQ_CST))
			backoff(&i);
		free(t);
	}
	return ncclSuccess;
}

/* ---- groups ---- */

struct gop {
	struct fcomm *c;
	struct op o;
};

static __thread int gdepth;
static __thread struct gop *gops;
static __thread int ngops, capgops;

ncclResult_t ncclGroupStart(void) {
	gdepth++;
	return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void) {
	if (gdepth == 0)
		return ncclInvalidUsage;
	if (--gdepth > 0)
		return ncclSuccess;
	ncclResult_t res = ncclSuccess;
	struct op *batch = malloc((ngops ? ngops : 1) * sizeof *batch);
	for (int i = 0; i < ngops; i++) {
		struct fcomm *c = gops[i].c;
		if (!c)
			continue;
		int n = 0;
		for (int j = i; j < ngops; j++) {
			if (gops[j].c == c) {
				batch[n++] = gops[j].o;
				gops[j].c = 0;
			}
		}
		ncclResult_t r = submit(c, batch, n);
		if (r != ncclSuccess && res == ncclSuccess)
			res = r;
	}
	free(batch);
	ngops = 0;
	return res;
}

static ncclResult_t enqueue(struct fcomm *c, struct op *o) {
	if (!c)
		return ncclInvalidArgument;
	int ntypes = c->version >= 21000 ? 10 : 9;
	if (o->dtype < 0 || o->dtype >= ntypes)
		return ncclInvalidArgument;
	if (o->redop < 0 || o->redop > (c->version >= 21000 ? AVG : MIN))
		return ncclInvalidArgument;
	if ((o->kind == OP_REDUCE || o->kind == OP_BROADCAST) && (o->root < 0 || o->root >= c->nranks))
		return ncclInvalidArgument;
	if ((o->kind == OP_SEND || o->kind == OP_RECV) && (o->peer < 0 || o->peer >= c->nranks))
		return ncclInvalidArgument;
	if (o->stream && o->stream->magic != FAKE_STREAM_MAGIC)
		return ncclInvalidArgument;
	if (o->count > 0) {
		int needs_send = o->kind != OP_RECV && (o->kind != OP_BROADCAST || o->root == c->rank);
		int needs_recv = o->kind != OP_SEND && (o->kind != OP_REDUCE || o->root == c->rank);
		if ((needs_send && !o->send) || (needs_recv && !o->recv))
			return ncclInvalidArgument;
	}
	if (gdepth > 0) {
		if (ngops == capgops) {
			capgops = capgops ? 2 * capgops : 16;
			gops = realloc(gops, capgops * sizeof *gops);
		}
		gops[ngops].c = c;
		gops[ngops].o = *o;
		ngops++;
		return ncclSuccess;
	}
	return submit(c, o, 1);
}

/* ---- the API ---- */

ncclResult_t ncclGetVersion(int *v) {
	if (!v)
		return ncclInvalidArgument;
	*v = version();
	return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r) {
	switch (r) {
	case ncclSuccess:
		return "no error";
	case ncclUnhandledCudaError:
		return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
	case ncclSystemError:
		return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
	case ncclInternalError:
		return "internal error - please report this issue to the NCCL developers";
	case ncclInvalidArgument:
		return "invalid argument (run with NCCL_DEBUG=WARN for details)";
	case ncclInvalidUsage:
		return "invalid usage (run with NCCL_DEBUG=WARN for details)";
	case ncclRemoteError:
		return "remote process exited or there was a network error";
	case ncclInProgress:
		return "NCCL operation in progress";
	}
	return "unknown result code";
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
	static unsigned counter;
	struct timespec ts;
	if (!id)
		return ncclInvalidArgument;
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(id, 0, sizeof *id);
	memcpy(id->internal, ID_MAGIC, 8);
	snprintf(id->internal + 8, sizeof id->internal - 8, "/dev/shm/fakenccl-%d-%u-%lx", (int)getpid(),
	         __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST), (unsigned long)ts.tv_nsec ^ (unsigned long)ts.tv_sec);
	return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *out, int nranks, ncclUniqueId id, int rank) {
	if (!out || nranks < 1 || rank < 0 || rank >= nranks || memcmp(id.internal, ID_MAGIC, 8) != 0)
		return ncclInvalidArgument;
	*out = 0;
	char path[121];
	memcpy(path, id.internal + 8, 120);
	path[120] = 0;
	size_t len = shared_size(nranks);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		return ncclSystemError;
	struct stat st;
	if (fstat(fd, &st) != 0 || ((size_t)st.st_size < len && ftruncate(fd, len) != 0)) {
		close(fd);
		return ncclSystemError;
	}
	void *base = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
		return ncclSystemError;
	struct shared *sh = base;
	int32_t zero = 0;
	__atomic_compare_exchange_n(&sh->nranks, &zero, nranks, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&sh->nranks, __ATOMIC_SEQ_CST) != nranks) {
		munmap(base, len);
		return ncclInvalidUsage;
	}
	int fail = envl("FAKENCCL_FAIL_INIT_RANK", -1) == rank;
	if (fail)
		__atomic_store_n(&sh->failed, 1, __ATOMIC_SEQ_CST);
	if (__atomic_add_fetch(&sh->joined, 1, __ATOMIC_SEQ_CST) == nranks)
		unlink(path); /* everyone has it mapped */
	if (fail) {
		munmap(base, len);
		return ncclSystemError;
	}
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	long timeout = envl("FAKENCCL_INIT_TIMEOUT_MS", 60000);
	for (int i = 0; __atomic_load_n(&sh->joined, __ATOMIC_SEQ_CST) < nranks;) {
		if (__atomic_load_n(&sh->failed, __ATOMIC_SEQ_CST))
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > timeout) {
			fprintf(stderr, "fake nccl: rank %d: ncclCommInitRank: %d of %d ranks joined in %ld ms\n", rank,
			        __atomic_load_n(&sh->joined, __ATOMIC_SEQ_CST), nranks, timeout);
			unlink(path);
			munmap(base, len);
			return ncclSystemError;
		}
		backoff(&i);
	}
	if (__atomic_load_n(&sh->failed, __ATOMIC_SEQ_CST)) {
		munmap(base, len);
		return ncclRemoteError;
	}
	struct fcomm *c = calloc(1, sizeof *c);
	c->sh = sh;
	c->base = base;
	c->maplen = len;
	c->rank = rank;
	c->nranks = nranks;
	c->version = version();
	if (envl("FAKENCCL_ASYNC_ERROR_RANK", 0) == rank)
		c->fail_at = (uint64_t)envl("FAKENCCL_ASYNC_ERROR_AT", 0);
	pthread_mutex_init(&c->mu, 0);
	pthread_cond_init(&c->cv, 0);
	if (pthread_create(&c->worker, 0, worker, c) != 0) {
		munmap(base, len);
		free(c);
		return ncclSystemError;
	}
	*out = c;
	return ncclSuccess;
}

static void teardown(struct fcomm *c) {
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->worker, 0);
	munmap(c->base, c->maplen);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

ncclResult_t ncclCommDestroy(ncclComm_t c) {
	if (!c)
		return ncclInvalidArgument;
	teardown(c);
	return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t c) {
	if (!c)
		return ncclSuccess;
	__atomic_store_n(&c->abort, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&c->sh->aborted, 1, __ATOMIC_SEQ_CST);
	teardown(c);
	return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t c, ncclResult_t *r) {
	if (!c || !r)
		return ncclInvalidArgument;
	*r = __atomic_load_n(&c->async_err, __ATOMIC_SEQ_CST);
	return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *s, void *r, size_t n, int dt, int op, ncclComm_t c, cudaStream_t st) {
	struct op o = {OP_ALLREDUCE, s, r, n, dt, op, 0, 0, st};
	return enqueue(c, &o);
}

ncclResult_t ncclReduce(const void *s, void *r, size_t n, int dt, int op, int root, ncclComm_t c, cudaStream_t st) {
	struct op o = {OP_REDUCE, s, r, n, dt, op, root, 0, st};
	return enqueue(c, &o);
}

#ifndef FAKE_OMIT_BROADCAST
ncclResult_t ncclBroadcast(const void *s, void *r, size_t n, int dt, int root, ncclComm_t c, cudaStream_t st) {
	struct op o = {OP_BROADCAST, s, r, n, dt, SUM, root, 0, st};
	return enqueue(c, &o);
}
#endif

ncclResult_t ncclAllGather(const void *s, void *r, size_t n, int dt, ncclComm_t c, cudaStream_t st) {
	struct op o = {OP_ALLGATHER, s, r, n, dt, SUM, 0, 0, st};
	return enqueue(c, &o);
}

ncclResult_t ncclReduceScatter(const void *s, void *r, size_t n, int dt, int op, ncclComm_t c, cudaStream_t st) {
	struct op o = {OP_REDUCESCATTER, s, r, n, dt, op, 0, 0, st};
	return enqueue(c, &o);
}

ncclResult_t ncclSend(const void *s, size_t n, int dt, int peer, ncclComm_t c, cudaStream_t st) {
	struct op o = {OP_SEND, s, 0, n, dt, SUM, 0, peer, st};
	return enqueue(c, &o);
}

ncclResult_t ncclRecv(void *r, size_t n, int dt, int peer, ncclComm_t c, cudaStream_t st) {
	struct op o = {OP_RECV, 0, r, n, dt, SUM, 0, peer, st};
	return enqueue(c, &o);
}
