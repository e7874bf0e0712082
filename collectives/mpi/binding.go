//go:build mpi

package mpi

// The only file that speaks C: thin wrappers around MPI calls that take
// and return Go types, and turn MPI's return codes into errors naming the
// call. Every function here must run on the MPI thread (engine.go).

/*
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sched.h>

// Element types, as backend.DType numbers them; 0 is raw bytes.
enum { RG_BYTE = 0, RG_F32, RG_F64, RG_I32, RG_I64, RG_U8, RG_F16, RG_BF16 };
// Reductions, as backend.Op numbers them.
enum { RG_SUM = 1, RG_PROD, RG_MIN, RG_MAX };

// Stands in for the buffer of an empty slice: MPI wants a valid address
// even for zero elements.
static char rg_empty[8];

// Half-precision conversions, the same as backend.Float16 and
// backend.BFloat16 (round to nearest, ties to even).
static inline float rg_from_bits(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static inline uint32_t rg_bits(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

static inline float rg_f16_wide(uint16_t h) {
	uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
	if (exp == 0x1f) return rg_from_bits(sign | 0x7f800000u | man << 13);
	if (exp == 0) {
		if (man == 0) return rg_from_bits(sign);
		uint32_t e = 127 - 15 + 1;
		while (!(man & 0x400)) { man <<= 1; e--; }
		man &= 0x3ff;
		return rg_from_bits(sign | e << 23 | man << 13);
	}
	return rg_from_bits(sign | (exp + 127 - 15) << 23 | man << 13);
}

static inline uint16_t rg_f16_narrow(float f) {
	uint32_t b = rg_bits(f);
	uint16_t sign = (b >> 16) & 0x8000;
	int32_t exp = (b >> 23) & 0xff;
	uint32_t man = b & 0x7fffff;
	if (exp == 0xff) return sign | (man ? 0x7e00 : 0x7c00);
	int32_t e = exp - 127 + 15;
	if (e >= 0x1f) return sign | 0x7c00;
	if (e <= 0) {
		if (e < -10) return sign;
		man |= 0x800000;
		uint32_t shift = (uint32_t)(14 - e), half = 1u << (shift - 1);
		uint32_t rest = man & ((1u << shift) - 1), m = man >> shift;
		if (rest > half || (rest == half && (m & 1))) m++;
		return sign | (uint16_t)m;
	}
	uint32_t m = man >> 13, rest = man & 0x1fff, h = (uint32_t)e << 10 | m;
	if (rest > 0x1000 || (rest == 0x1000 && (m & 1))) h++;
	return sign | (uint16_t)h;
}

static inline float rg_bf16_wide(uint16_t h) { return rg_from_bits((uint32_t)h << 16); }

static inline uint16_t rg_bf16_narrow(float f) {
	uint32_t b = rg_bits(f);
	if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(b >> 16 | 0x40);
	b += 0x7fff + ((b >> 16) & 1);
	return (uint16_t)(b >> 16);
}

// min and max as Go's built-ins: NaN wins, and -0 is less than +0.
static inline float rg_min(float x, float y) {
	if (x != x || y != y) return x + y;
	if (x == y) return signbit(x) ? x : y;
	return x < y ? x : y;
}
static inline float rg_max(float x, float y) {
	if (x != x || y != y) return x + y;
	if (x == y) return signbit(x) ? y : x;
	return x > y ? x : y;
}

// User-defined reductions over MPI_UINT16_T holding half-precision bit
// patterns: inout[i] = in[i] op inout[i], computed in float32.
#define RG_HALF_OP(name, wide, narrow, expr) \
	static void name(void *in, void *inout, int *len, MPI_Datatype *dt) { \
		const uint16_t *a = in; uint16_t *b = inout; \
		for (int i = 0; i < *len; i++) { float x = wide(a[i]), y = wide(b[i]); b[i] = narrow(expr); } \
	}
RG_HALF_OP(rg_f16_sum, rg_f16_wide, rg_f16_narrow, x + y)
RG_HALF_OP(rg_f16_prod, rg_f16_wide, rg_f16_narrow, x * y)
RG_HALF_OP(rg_f16_min, rg_f16_wide, rg_f16_narrow, rg_min(x, y))
RG_HALF_OP(rg_f16_max, rg_f16_wide, rg_f16_narrow, rg_max(x, y))
RG_HALF_OP(rg_bf16_sum, rg_bf16_wide, rg_bf16_narrow, x + y)
RG_HALF_OP(rg_bf16_prod, rg_bf16_wide, rg_bf16_narrow, x * y)
RG_HALF_OP(rg_bf16_min, rg_bf16_wide, rg_bf16_narrow, rg_min(x, y))
RG_HALF_OP(rg_bf16_max, rg_bf16_wide, rg_bf16_narrow, rg_max(x, y))

// Reductions of uint8, done here rather than by the library: Open MPI
// 4.1's AVX reductions saturate 8-bit sums instead of wrapping around
// (open-mpi/ompi#8045), and MPICH 4.0.2 compares unsigned integers as
// signed in MPI_MIN and MPI_MAX (pmodels/mpich#6083).
#define RG_U8_OP(name, expr) \
	static void name(void *in, void *inout, int *len, MPI_Datatype *dt) { \
		const uint8_t *a = in; uint8_t *b = inout; \
		for (int i = 0; i < *len; i++) { uint8_t x = a[i], y = b[i]; b[i] = (uint8_t)(expr); } \
	}
RG_U8_OP(rg_u8_sum, x + y)
RG_U8_OP(rg_u8_prod, x * y)
RG_U8_OP(rg_u8_min, x < y ? x : y)
RG_U8_OP(rg_u8_max, x > y ? x : y)

// The reductions defined here and their MPI ops, [0] float16, [1]
// bfloat16 and [2] uint8, indexed by reduction.
static MPI_User_function *rg_funcs[3][5] = {
	{0, rg_f16_sum, rg_f16_prod, rg_f16_min, rg_f16_max},
	{0, rg_bf16_sum, rg_bf16_prod, rg_bf16_min, rg_bf16_max},
	{0, rg_u8_sum, rg_u8_prod, rg_u8_min, rg_u8_max},
};
static MPI_Op rg_ops[3][5];
static int rg_ops_made;

static int rg_own(int dt) { return dt == RG_F16 ? 0 : dt == RG_BF16 ? 1 : 2; }

// rg_reduce_local runs one of the reductions defined here without MPI.
static void rg_reduce_local(int dt, int op, void *in, void *inout, int n) {
	rg_funcs[rg_own(dt)][op](in, inout, &n, NULL);
}

static int rg_make_ops(void) {
	for (int t = 0; t < 3; t++) {
		for (int o = RG_SUM; o <= RG_MAX; o++) {
			int rc = MPI_Op_create(rg_funcs[t][o], 1, &rg_ops[t][o]);
			if (rc != MPI_SUCCESS) return rc;
			rg_ops_made++;
		}
	}
	return MPI_SUCCESS;
}

static void rg_free_ops(void) {
	for (int i = 0; i < rg_ops_made; i++) MPI_Op_free(&rg_ops[i / 4][1 + i % 4]);
	rg_ops_made = 0;
}

static MPI_Datatype rg_type(int dt) {
	switch (dt) {
	case RG_F32: return MPI_FLOAT;
	case RG_F64: return MPI_DOUBLE;
	case RG_I32: return MPI_INT32_T;
	case RG_I64: return MPI_INT64_T;
	case RG_U8: return MPI_UINT8_T;
	case RG_F16: case RG_BF16: return MPI_UINT16_T;
	}
	return MPI_BYTE;
}

static MPI_Op rg_op(int dt, int op) {
	if (dt == RG_F16 || dt == RG_BF16 || dt == RG_U8) return rg_ops[rg_own(dt)][op];
	switch (op) {
	case RG_SUM: return MPI_SUM;
	case RG_PROD: return MPI_PROD;
	case RG_MIN: return MPI_MIN;
	case RG_MAX: return MPI_MAX;
	}
	return MPI_OP_NULL;
}

static void *rg_buf(void *p) { return p ? p : rg_empty; }
static const void *rg_send(const void *p, int inplace) { return inplace ? MPI_IN_PLACE : rg_buf((void *)p); }

static void rg_yield(void) { sched_yield(); }

static int rg_init(int want, int *got) { return MPI_Init_thread(NULL, NULL, want, got); }
static int rg_world(int *rank, int *size) {
	int rc = MPI_Comm_rank(MPI_COMM_WORLD, rank);
	return rc != MPI_SUCCESS ? rc : MPI_Comm_size(MPI_COMM_WORLD, size);
}
static int rg_comm_idup(MPI_Comm *out, MPI_Request *req) { return MPI_Comm_idup(MPI_COMM_WORLD, out, req); }
static int rg_errors_return(MPI_Comm c) { return MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN); }
static MPI_Comm rg_comm_null(void) { return MPI_COMM_NULL; }
static MPI_Comm rg_comm_world(void) { return MPI_COMM_WORLD; }
static MPI_Request rg_request_null(void) { return MPI_REQUEST_NULL; }

static int rg_test(MPI_Request *req, int *done, int *count) {
	MPI_Status st;
	int rc = MPI_Test(req, done, &st);
	if (rc == MPI_SUCCESS && *done) {
		// Collectives leave the count undefined; only receives use it.
		if (MPI_Get_count(&st, MPI_BYTE, count) != MPI_SUCCESS) *count = -1;
	}
	return rc;
}

static int rg_iallreduce(const void *s, void *r, int inplace, int n, int dt, int op, MPI_Comm c, MPI_Request *q) {
	return MPI_Iallreduce(rg_send(s, inplace), rg_buf(r), n, rg_type(dt), rg_op(dt, op), c, q);
}
static int rg_ireduce(const void *s, void *r, int inplace, int n, int dt, int op, int root, MPI_Comm c, MPI_Request *q) {
	return MPI_Ireduce(rg_send(s, inplace), rg_buf(r), n, rg_type(dt), rg_op(dt, op), root, c, q);
}
static int rg_ireduce_scatter(const void *s, void *r, int n, int dt, int op, MPI_Comm c, MPI_Request *q) {
	return MPI_Ireduce_scatter_block(rg_buf((void *)s), rg_buf(r), n, rg_type(dt), rg_op(dt, op), c, q);
}
static int rg_ibcast(void *b, int n, int root, MPI_Comm c, MPI_Request *q) {
	return MPI_Ibcast(rg_buf(b), n, MPI_BYTE, root, c, q);
}
static int rg_iallgather(const void *s, void *r, int n, MPI_Comm c, MPI_Request *q) {
	return MPI_Iallgather(rg_buf((void *)s), n, MPI_BYTE, rg_buf(r), n, MPI_BYTE, c, q);
}
static int rg_igather(const void *s, void *r, int n, int root, MPI_Comm c, MPI_Request *q) {
	return MPI_Igather(rg_buf((void *)s), n, MPI_BYTE, rg_buf(r), n, MPI_BYTE, root, c, q);
}
static int rg_iscatter(const void *s, void *r, int n, int root, MPI_Comm c, MPI_Request *q) {
	return MPI_Iscatter(rg_buf((void *)s), n, MPI_BYTE, rg_buf(r), n, MPI_BYTE, root, c, q);
}
static int rg_ialltoall(const void *s, void *r, int n, MPI_Comm c, MPI_Request *q) {
	return MPI_Ialltoall(rg_buf((void *)s), n, MPI_BYTE, rg_buf(r), n, MPI_BYTE, c, q);
}
static int rg_ibarrier(MPI_Comm c, MPI_Request *q) { return MPI_Ibarrier(c, q); }
static int rg_isend(const void *b, int n, int peer, MPI_Comm c, MPI_Request *q) {
	return MPI_Isend(rg_buf((void *)b), n, MPI_BYTE, peer, 0, c, q);
}
static int rg_irecv(void *b, int n, int peer, MPI_Comm c, MPI_Request *q) {
	return MPI_Irecv(rg_buf(b), n, MPI_BYTE, peer, 0, c, q);
}
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

type (
	commHandle = C.MPI_Comm
	request    = C.MPI_Request
)

// mpiError is an MPI call's failure.
type mpiError struct {
	Call string
	Code int
	Text string
}

func (e *mpiError) Error() string {
	return fmt.Sprintf("%s: %s (MPI error %d)", e.Call, e.Text, e.Code)
}

// check turns an MPI return code into an error naming call.
func check(call string, rc C.int) error {
	if rc == C.MPI_SUCCESS {
		return nil
	}
	var buf [C.MPI_MAX_ERROR_STRING + 1]C.char
	var n C.int
	text := "unknown error"
	if C.MPI_Error_string(rc, &buf[0], &n) == C.MPI_SUCCESS {
		text = C.GoString(&buf[0])
	}
	return &mpiError{Call: call, Code: int(rc), Text: text}
}

var threadLevels = map[C.int]string{
	C.MPI_THREAD_SINGLE:     "MPI_THREAD_SINGLE",
	C.MPI_THREAD_FUNNELED:   "MPI_THREAD_FUNNELED",
	C.MPI_THREAD_SERIALIZED: "MPI_THREAD_SERIALIZED",
	C.MPI_THREAD_MULTIPLE:   "MPI_THREAD_MULTIPLE",
}

// cInit initialises MPI asking for MPI_THREAD_FUNNELED, creates the half
// reductions and returns the world.
func cInit() (Info, error) {
	var got C.int
	if err := check("MPI_Init_thread", C.rg_init(C.MPI_THREAD_FUNNELED, &got)); err != nil {
		return Info{}, err
	}
	w := Info{Threading: threadLevels[got]}
	if got < C.MPI_THREAD_FUNNELED {
		return w, fmt.Errorf("MPI_Init_thread: asked for MPI_THREAD_FUNNELED, got %s", w.Threading)
	}
	// Errors come back as return codes, never abort the process: Open
	// MPI reports a failed nonblocking collective through
	// MPI_COMM_WORLD's handler, whichever communicator it ran on.
	if err := check("MPI_Comm_set_errhandler", C.rg_errors_return(C.rg_comm_world())); err != nil {
		return w, err
	}
	var rank, size C.int
	if err := check("MPI_Comm_rank", C.rg_world(&rank, &size)); err != nil {
		return w, err
	}
	w.Rank, w.Size = int(rank), int(size)
	var buf [C.MPI_MAX_LIBRARY_VERSION_STRING + 1]C.char
	var n C.int
	if C.MPI_Get_library_version(&buf[0], &n) == C.MPI_SUCCESS {
		line, _, _ := strings.Cut(strings.TrimSpace(C.GoString(&buf[0])), "\n")
		w.Library = strings.Join(strings.Fields(line), " ")
	}
	return w, check("MPI_Op_create", C.rg_make_ops())
}

// reduceOwn runs the reduction this file defines for dt (float16,
// bfloat16 or uint8) and op: inout[i] = in[i] op inout[i]. It needs no
// MPI; the tests compare it with the backend package's.
func reduceOwn(dt, op uint8, in, inout []byte) {
	if len(inout) == 0 {
		return
	}
	n := len(inout)
	if dt != C.RG_U8 {
		n /= 2
	}
	C.rg_reduce_local(C.int(dt), C.int(op), unsafe.Pointer(&in[0]), unsafe.Pointer(&inout[0]), C.int(n))
}

// cInitialized reports whether MPI_Init_thread succeeded.
func cInitialized() bool {
	var flag C.int
	return C.MPI_Initialized(&flag) == C.MPI_SUCCESS && flag != 0
}

func cFinalize() error {
	C.rg_free_ops()
	return check("MPI_Finalize", C.MPI_Finalize())
}

// commSlot is C memory that MPI_Comm_idup writes its communicator into
// when it completes.
type commSlot struct{ p *C.MPI_Comm }

func newCommSlot() commSlot {
	s := commSlot{(*C.MPI_Comm)(C.malloc(C.sizeof_MPI_Comm))}
	*s.p = C.rg_comm_null()
	return s
}

func (s commSlot) get() commHandle { return *s.p }
func (s commSlot) free()           { C.free(unsafe.Pointer(s.p)) }

func cCommIdup(slot commSlot, q *request) error {
	return check("MPI_Comm_idup", C.rg_comm_idup(slot.p, q))
}

func cCommFree(c commHandle) error { return check("MPI_Comm_free", C.MPI_Comm_free(&c)) }

// cYield lets other threads run on this core (sched_yield).
func cYield() { C.rg_yield() }

// nullRequest is MPI_REQUEST_NULL, a link-time constant in both MPIs.
var nullRequest = C.rg_request_null()

func requestNull() request { return nullRequest }

// cTest tests q; when it is done, count is the bytes it received (for
// receives).
func cTest(q *request) (done bool, count int, err error) {
	var d, n C.int
	err = check("MPI_Test", C.rg_test(q, &d, &n))
	return d != 0, int(n), err
}

// The nonblocking calls. A nil buffer is an empty one; inPlace passes
// MPI_IN_PLACE as the send buffer.

func cIallreduce(s, r unsafe.Pointer, inPlace bool, n int, dt, op uint8, c commHandle, q *request) error {
	return check("MPI_Iallreduce", C.rg_iallreduce(s, r, cBool(inPlace), C.int(n), C.int(dt), C.int(op), c, q))
}

func cIreduce(s, r unsafe.Pointer, inPlace bool, n int, dt, op uint8, root int, c commHandle, q *request) error {
	return check("MPI_Ireduce", C.rg_ireduce(s, r, cBool(inPlace), C.int(n), C.int(dt), C.int(op), C.int(root), c, q))
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func cIreduceScatter(s, r unsafe.Pointer, n int, dt, op uint8, c commHandle, q *request) error {
	return check("MPI_Ireduce_scatter_block", C.rg_ireduce_scatter(s, r, C.int(n), C.int(dt), C.int(op), c, q))
}

func cIbcast(b unsafe.Pointer, n, root int, c commHandle, q *request) error {
	return check("MPI_Ibcast", C.rg_ibcast(b, C.int(n), C.int(root), c, q))
}

func cIallgather(s, r unsafe.Pointer, n int, c commHandle, q *request) error {
	return check("MPI_Iallgather", C.rg_iallgather(s, r, C.int(n), c, q))
}

func cIgather(s, r unsafe.Pointer, n, root int, c commHandle, q *request) error {
	return check("MPI_Igather", C.rg_igather(s, r, C.int(n), C.int(root), c, q))
}

func cIscatter(s, r unsafe.Pointer, n, root int, c commHandle, q *request) error {
	return check("MPI_Iscatter", C.rg_iscatter(s, r, C.int(n), C.int(root), c, q))
}

func cIalltoall(s, r unsafe.Pointer, n int, c commHandle, q *request) error {
	return check("MPI_Ialltoall", C.rg_ialltoall(s, r, C.int(n), c, q))
}

func cIbarrier(c commHandle, q *request) error { return check("MPI_Ibarrier", C.rg_ibarrier(c, q)) }

func cIsend(b unsafe.Pointer, n, peer int, c commHandle, q *request) error {
	return check("MPI_Isend", C.rg_isend(b, C.int(n), C.int(peer), c, q))
}

func cIrecv(b unsafe.Pointer, n, peer int, c commHandle, q *request) error {
	return check("MPI_Irecv", C.rg_irecv(b, C.int(n), C.int(peer), c, q))
}
