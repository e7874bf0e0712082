//go:build cgo && unix

package nccl

/*
#cgo linux LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// NCCL and the CUDA runtime are reached only through pointers that dlsym
// returns; these declarations follow nccl.h and cuda_runtime_api.h.
// Enumerations (ncclResult_t, ncclDataType_t, ncclRedOp_t, cudaError_t,
// cudaMemcpyKind) are ints; ncclComm_t and cudaStream_t are pointers,
// kept as uintptr_t on the Go side.
typedef struct { char internal[128]; } rg_unique_id;

static void *rg_open(const char *path, char **err) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		*err = strdup(e ? e : "unknown dlopen error");
	}
	return h;
}

static void *rg_sym(void *h, const char *name) { return dlsym(h, name); }
static void rg_close(void *h) { dlclose(h); }

// rg_file is the file a symbol was loaded from.
static const char *rg_file(void *sym) {
	Dl_info info;
	if (dladdr(sym, &info) && info.dli_fname)
		return info.dli_fname;
	return NULL;
}

static int rg_nccl_version(void *f, int *v) { return ((int (*)(int *))f)(v); }
static int rg_nccl_unique_id(void *f, rg_unique_id *id) { return ((int (*)(rg_unique_id *))f)(id); }
static int rg_nccl_init_rank(void *f, uintptr_t *comm, int n, rg_unique_id *id, int rank) {
	void *c = NULL;
	int r = ((int (*)(void **, int, rg_unique_id, int))f)(&c, n, *id, rank);
	*comm = (uintptr_t)c;
	return r;
}
static int rg_nccl_comm(void *f, uintptr_t comm) { return ((int (*)(void *))f)((void *)comm); }
static int rg_nccl_async_error(void *f, uintptr_t comm, int *r) { return ((int (*)(void *, int *))f)((void *)comm, r); }
static const char *rg_nccl_error_string(void *f, int r) { return ((const char *(*)(int))f)(r); }
static int rg_nccl_allreduce(void *f, uintptr_t s, uintptr_t r, size_t n, int dt, int op, uintptr_t comm, uintptr_t st) {
	return ((int (*)(const void *, void *, size_t, int, int, void *, void *))f)((const void *)s, (void *)r, n, dt, op, (void *)comm, (void *)st);
}
static int rg_nccl_reduce(void *f, uintptr_t s, uintptr_t r, size_t n, int dt, int op, int root, uintptr_t comm, uintptr_t st) {
	return ((int (*)(const void *, void *, size_t, int, int, int, void *, void *))f)((const void *)s, (void *)r, n, dt, op, root, (void *)comm, (void *)st);
}
static int rg_nccl_broadcast(void *f, uintptr_t s, uintptr_t r, size_t n, int dt, int root, uintptr_t comm, uintptr_t st) {
	return ((int (*)(const void *, void *, size_t, int, int, void *, void *))f)((const void *)s, (void *)r, n, dt, root, (void *)comm, (void *)st);
}
static int rg_nccl_allgather(void *f, uintptr_t s, uintptr_t r, size_t n, int dt, uintptr_t comm, uintptr_t st) {
	return ((int (*)(const void *, void *, size_t, int, void *, void *))f)((const void *)s, (void *)r, n, dt, (void *)comm, (void *)st);
}
static int rg_nccl_reducescatter(void *f, uintptr_t s, uintptr_t r, size_t n, int dt, int op, uintptr_t comm, uintptr_t st) {
	return ((int (*)(const void *, void *, size_t, int, int, void *, void *))f)((const void *)s, (void *)r, n, dt, op, (void *)comm, (void *)st);
}
static int rg_nccl_p2p(void *f, uintptr_t b, size_t n, int dt, int peer, uintptr_t comm, uintptr_t st) {
	return ((int (*)(void *, size_t, int, int, void *, void *))f)((void *)b, n, dt, peer, (void *)comm, (void *)st);
}
static int rg_call(void *f) { return ((int (*)(void))f)(); }

static int rg_cuda_int_out(void *f, int *v) { return ((int (*)(int *))f)(v); }
static int rg_cuda_int(void *f, int v) { return ((int (*)(int))f)(v); }
static int rg_cuda_ptr(void *f, uintptr_t p) { return ((int (*)(void *))f)((void *)p); }
static int rg_cuda_ptr_out(void *f, uintptr_t *p) {
	void *v = NULL;
	int r = ((int (*)(void **))f)(&v);
	*p = (uintptr_t)v;
	return r;
}
static int rg_cuda_malloc(void *f, uintptr_t *p, size_t n) {
	void *v = NULL;
	int r = ((int (*)(void **, size_t))f)(&v, n);
	*p = (uintptr_t)v;
	return r;
}
// Kinds: 1 host to device, 2 device to host.
static int rg_cuda_memcpy(void *f, uintptr_t dst, uintptr_t src, void *host, size_t n, int kind, uintptr_t st) {
	void *d = kind == 2 ? host : (void *)dst;
	const void *s = kind == 1 ? host : (const void *)src;
	return ((int (*)(void *, const void *, size_t, int, void *))f)(d, s, n, kind, (void *)st);
}
static const char *rg_cuda_error_string(void *f, int e) { return ((const char *(*)(int))f)(e); }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

const (
	cudaSuccess       = 0
	cudaErrorNotReady = 600

	memcpyHostToDevice = 1
	memcpyDeviceToHost = 2
)

// library is a loaded NCCL and CUDA runtime: the function pointers that
// package nccl calls, every one resolved when the libraries load.
type library struct {
	ncclPath, cudartPath string
	version              Version

	ncclGetVersion, ncclGetUniqueId, ncclCommInitRank, ncclCommAbort,
	ncclCommGetAsyncError, ncclGetErrorString, ncclAllReduce, ncclReduce,
	ncclBroadcast, ncclAllGather, ncclReduceScatter, ncclSend, ncclRecv,
	ncclGroupStart, ncclGroupEnd unsafe.Pointer

	cudaGetDeviceCount, cudaSetDevice, cudaMalloc, cudaFree, cudaMemcpyAsync,
	cudaStreamCreate, cudaStreamDestroy, cudaStreamQuery, cudaGetErrorString unsafe.Pointer
}

// libraries holds what load returned, by the paths it was asked for.
// Loaded libraries stay loaded for the life of the process.
var libraries struct {
	sync.Mutex
	m map[[2]string]*library
}

// load loads the libraries that the environment names, or finds them
// under their usual names.
func load() (*library, error) {
	nccl, cudart := os.Getenv(EnvNCCLLibrary), os.Getenv(EnvCUDARTLibrary)
	key := [2]string{nccl, cudart}
	libraries.Lock()
	defer libraries.Unlock()
	if l := libraries.m[key]; l != nil {
		return l, nil
	}
	// dlerror is per thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	l := &library{}
	nh, err := open("NCCL", nccl, NCCLLibraries, EnvNCCLLibrary, []symbol{
		{"ncclGetVersion", &l.ncclGetVersion},
		{"ncclGetUniqueId", &l.ncclGetUniqueId},
		{"ncclCommInitRank", &l.ncclCommInitRank},
		{"ncclCommAbort", &l.ncclCommAbort},
		{"ncclCommGetAsyncError", &l.ncclCommGetAsyncError},
		{"ncclGetErrorString", &l.ncclGetErrorString},
		{"ncclAllReduce", &l.ncclAllReduce},
		{"ncclReduce", &l.ncclReduce},
		{"ncclBroadcast", &l.ncclBroadcast},
		{"ncclAllGather", &l.ncclAllGather},
		{"ncclReduceScatter", &l.ncclReduceScatter},
		{"ncclSend", &l.ncclSend},
		{"ncclRecv", &l.ncclRecv},
		{"ncclGroupStart", &l.ncclGroupStart},
		{"ncclGroupEnd", &l.ncclGroupEnd},
	})
	if err != nil {
		return nil, err
	}
	_, err = open("CUDA runtime", cudart, CUDARuntimeLibraries, EnvCUDARTLibrary, []symbol{
		{"cudaGetDeviceCount", &l.cudaGetDeviceCount},
		{"cudaSetDevice", &l.cudaSetDevice},
		{"cudaMalloc", &l.cudaMalloc},
		{"cudaFree", &l.cudaFree},
		{"cudaMemcpyAsync", &l.cudaMemcpyAsync},
		{"cudaStreamCreate", &l.cudaStreamCreate},
		{"cudaStreamDestroy", &l.cudaStreamDestroy},
		{"cudaStreamQuery", &l.cudaStreamQuery},
		{"cudaGetErrorString", &l.cudaGetErrorString},
	})
	if err != nil {
		C.rg_close(nh)
		return nil, err
	}
	l.ncclPath = fileOf(l.ncclGetVersion, nccl)
	l.cudartPath = fileOf(l.cudaMalloc, cudart)
	var code C.int
	if err := l.ncclErr("ncclGetVersion", C.rg_nccl_version(l.ncclGetVersion, &code)); err != nil {
		return nil, fmt.Errorf("nccl: %s: %w", l.ncclPath, err)
	}
	l.version = decodeVersion(int(code))
	if libraries.m == nil {
		libraries.m = map[[2]string]*library{}
	}
	libraries.m[key] = l
	return l, nil
}

type symbol struct {
	name string
	ptr  *unsafe.Pointer
}

// open loads the library at path, or the first of names that loads, and
// resolves every symbol in syms.
func open(what, path string, names []string, env string, syms []symbol) (unsafe.Pointer, error) {
	tries := names
	if path != "" {
		tries = []string{path}
	}
	var h unsafe.Pointer
	var first error
	for _, name := range tries {
		cname := C.CString(name)
		var cerr *C.char
		h = C.rg_open(cname, &cerr)
		C.free(unsafe.Pointer(cname))
		if h != nil {
			path = name
			break
		}
		if first == nil {
			first = errors.New(C.GoString(cerr))
		}
		C.free(unsafe.Pointer(cerr))
	}
	if h == nil {
		where := path
		if where == "" {
			where = "(tried " + strings.Join(names, ", ") + ")"
		}
		return nil, &LoadError{Library: what, Path: where, Env: env, Err: first}
	}
	for _, s := range syms {
		cname := C.CString(s.name)
		p := C.rg_sym(h, cname)
		C.free(unsafe.Pointer(cname))
		if p == nil {
			file := fileOfHandle(h, syms, path)
			C.rg_close(h)
			return nil, &LoadError{Library: what, Path: file, Symbol: s.name, Env: env, Err: errors.New("undefined symbol")}
		}
		*s.ptr = p
	}
	return h, nil
}

// fileOf is the file that holds sym, or def when the loader cannot say.
func fileOf(sym unsafe.Pointer, def string) string {
	if f := C.rg_file(sym); f != nil {
		return C.GoString(f)
	}
	return def
}

// fileOfHandle names the file of a library whose symbols are partly
// resolved, by the first symbol found.
func fileOfHandle(h unsafe.Pointer, syms []symbol, def string) string {
	for _, s := range syms {
		if *s.ptr != nil {
			return fileOf(*s.ptr, def)
		}
	}
	return def
}

func (l *library) ncclErr(call string, r C.int) error {
	if r == 0 {
		return nil
	}
	return &NCCLError{Call: call, Result: int(r), Msg: C.GoString(C.rg_nccl_error_string(l.ncclGetErrorString, r))}
}

func (l *library) cudaErr(call string, r C.int) error {
	if r == cudaSuccess {
		return nil
	}
	return &CUDAError{Call: call, Code: int(r), Msg: C.GoString(C.rg_cuda_error_string(l.cudaGetErrorString, r))}
}

// The methods below call one function each and turn its result into an
// error that names it. CUDA calls use the calling thread's device: the
// caller locks its goroutine to the thread and sets the device first.

func (l *library) deviceCount() (int, error) {
	var n C.int
	err := l.cudaErr("cudaGetDeviceCount", C.rg_cuda_int_out(l.cudaGetDeviceCount, &n))
	return int(n), err
}

func (l *library) setDevice(dev int) error {
	if r := C.rg_cuda_int(l.cudaSetDevice, C.int(dev)); r != cudaSuccess {
		return l.cudaErr(fmt.Sprintf("cudaSetDevice(%d)", dev), r)
	}
	return nil
}

func (l *library) malloc(n int) (uintptr, error) {
	var p C.uintptr_t
	if r := C.rg_cuda_malloc(l.cudaMalloc, &p, C.size_t(n)); r != cudaSuccess {
		return 0, l.cudaErr(fmt.Sprintf("cudaMalloc of %d bytes", n), r)
	}
	return uintptr(p), nil
}

func (l *library) free(p uintptr) error {
	return l.cudaErr("cudaFree", C.rg_cuda_ptr(l.cudaFree, C.uintptr_t(p)))
}

func (l *library) streamCreate() (uintptr, error) {
	var s C.uintptr_t
	err := l.cudaErr("cudaStreamCreate", C.rg_cuda_ptr_out(l.cudaStreamCreate, &s))
	return uintptr(s), err
}

func (l *library) streamDestroy(s uintptr) error {
	return l.cudaErr("cudaStreamDestroy", C.rg_cuda_ptr(l.cudaStreamDestroy, C.uintptr_t(s)))
}

// streamQuery is cudaStreamQuery's raw result: cudaSuccess when the
// stream's work is done, cudaErrorNotReady while it runs.
func (l *library) streamQuery(s uintptr) C.int {
	return C.rg_cuda_ptr(l.cudaStreamQuery, C.uintptr_t(s))
}

// h2d copies host memory to the device on stream s. With pageable host
// memory the copy has left src when it returns.
func (l *library) h2d(dst uintptr, src []byte, s uintptr) error {
	if len(src) == 0 {
		return nil
	}
	return l.cudaErr("cudaMemcpyAsync (host to device)", C.rg_cuda_memcpy(l.cudaMemcpyAsync, C.uintptr_t(dst), 0,
		unsafe.Pointer(&src[0]), C.size_t(len(src)), memcpyHostToDevice, C.uintptr_t(s)))
}

// d2h copies device memory to the host on stream s. With pageable host
// memory it returns when the copy is done; the caller waits on the
// stream before it reads dst all the same.
func (l *library) d2h(dst []byte, src uintptr, s uintptr) error {
	if len(dst) == 0 {
		return nil
	}
	return l.cudaErr("cudaMemcpyAsync (device to host)", C.rg_cuda_memcpy(l.cudaMemcpyAsync, 0, C.uintptr_t(src),
		unsafe.Pointer(&dst[0]), C.size_t(len(dst)), memcpyDeviceToHost, C.uintptr_t(s)))
}

func (l *library) uniqueID() ([128]byte, error) {
	var id C.rg_unique_id
	var out [128]byte
	if err := l.ncclErr("ncclGetUniqueId", C.rg_nccl_unique_id(l.ncclGetUniqueId, &id)); err != nil {
		return out, err
	}
	copy(out[:], C.GoBytes(unsafe.Pointer(&id.internal[0]), 128))
	return out, nil
}

// initRank joins the communicator id names, as rank of n. It blocks until
// every rank has joined.
func (l *library) initRank(n int, id [128]byte, rank int) (uintptr, error) {
	var cid C.rg_unique_id
	for i, b := range id {
		cid.internal[i] = C.char(b)
	}
	var comm C.uintptr_t
	if r := C.rg_nccl_init_rank(l.ncclCommInitRank, &comm, C.int(n), &cid, C.int(rank)); r != 0 {
		return 0, l.ncclErr(fmt.Sprintf("ncclCommInitRank (rank %d of %d)", rank, n), r)
	}
	return uintptr(comm), nil
}

func (l *library) abort(comm uintptr) error {
	return l.ncclErr("ncclCommAbort", C.rg_nccl_comm(l.ncclCommAbort, C.uintptr_t(comm)))
}

// asyncError is the communicator's asynchronous error, nil while there is
// none (or the operation is still in progress).
func (l *library) asyncError(comm uintptr) error {
	var r C.int
	if err := l.ncclErr("ncclCommGetAsyncError", C.rg_nccl_async_error(l.ncclCommGetAsyncError, C.uintptr_t(comm), &r)); err != nil {
		return err
	}
	if r == 0 || r == ncclInProgress {
		return nil
	}
	return l.ncclErr("asynchronous error (ncclCommGetAsyncError)", r)
}

func (l *library) allReduce(s, r uintptr, n, dt, op int, comm, st uintptr) error {
	return l.ncclErr("ncclAllReduce", C.rg_nccl_allreduce(l.ncclAllReduce, C.uintptr_t(s), C.uintptr_t(r), C.size_t(n), C.int(dt), C.int(op), C.uintptr_t(comm), C.uintptr_t(st)))
}

func (l *library) reduce(s, r uintptr, n, dt, op, root int, comm, st uintptr) error {
	return l.ncclErr("ncclReduce", C.rg_nccl_reduce(l.ncclReduce, C.uintptr_t(s), C.uintptr_t(r), C.size_t(n), C.int(dt), C.int(op), C.int(root), C.uintptr_t(comm), C.uintptr_t(st)))
}

func (l *library) broadcast(s, r uintptr, n, dt, root int, comm, st uintptr) error {
	return l.ncclErr("ncclBroadcast", C.rg_nccl_broadcast(l.ncclBroadcast, C.uintptr_t(s), C.uintptr_t(r), C.size_t(n), C.int(dt), C.int(root), C.uintptr_t(comm), C.uintptr_t(st)))
}

func (l *library) allGather(s, r uintptr, n, dt int, comm, st uintptr) error {
	return l.ncclErr("ncclAllGather", C.rg_nccl_allgather(l.ncclAllGather, C.uintptr_t(s), C.uintptr_t(r), C.size_t(n), C.int(dt), C.uintptr_t(comm), C.uintptr_t(st)))
}

func (l *library) reduceScatter(s, r uintptr, n, dt, op int, comm, st uintptr) error {
	return l.ncclErr("ncclReduceScatter", C.rg_nccl_reducescatter(l.ncclReduceScatter, C.uintptr_t(s), C.uintptr_t(r), C.size_t(n), C.int(dt), C.int(op), C.uintptr_t(comm), C.uintptr_t(st)))
}

func (l *library) send(b uintptr, n, dt, peer int, comm, st uintptr) error {
	if r := C.rg_nccl_p2p(l.ncclSend, C.uintptr_t(b), C.size_t(n), C.int(dt), C.int(peer), C.uintptr_t(comm), C.uintptr_t(st)); r != 0 {
		return l.ncclErr(fmt.Sprintf("ncclSend to %d", peer), r)
	}
	return nil
}

func (l *library) recv(b uintptr, n, dt, peer int, comm, st uintptr) error {
	if r := C.rg_nccl_p2p(l.ncclRecv, C.uintptr_t(b), C.size_t(n), C.int(dt), C.int(peer), C.uintptr_t(comm), C.uintptr_t(st)); r != 0 {
		return l.ncclErr(fmt.Sprintf("ncclRecv from %d", peer), r)
	}
	return nil
}

// group runs f between ncclGroupStart and ncclGroupEnd, on one thread
// (NCCL's group state is per thread), and always ends the group.
func (l *library) group(f func() error) error {
	if err := l.ncclErr("ncclGroupStart", C.rg_call(l.ncclGroupStart)); err != nil {
		return err
	}
	err := f()
	if end := l.ncclErr("ncclGroupEnd", C.rg_call(l.ncclGroupEnd)); err == nil {
		err = end
	}
	return err
}
