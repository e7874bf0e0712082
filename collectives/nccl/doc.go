// Package nccl is the collectives backend for NVIDIA GPUs: it runs the
// group's operations with NCCL, one rank per GPU. It registers itself as
// "nccl" (backend.Register); the collectives package picks it by that
// name.
//
// # Libraries
//
// NCCL (libnccl.so.2) and the CUDA runtime (libcudart) are loaded with
// dlopen when the first backend is built, never linked: raygo builds and
// runs without CUDA, and only a group that asks for NCCL needs it.
// EnvNCCLLibrary and EnvCUDARTLibrary (RAYGO_NCCL_LIBRARY,
// RAYGO_CUDART_LIBRARY) name the files; otherwise the loader's search path
// is tried with NCCLLibraries and CUDARuntimeLibraries (libcudart.so.13,
// .12, .11.0, then the plain name). Every function the backend calls is
// resolved at load time: a missing library or symbol is a *LoadError that
// names the file and the symbol. Probe loads the libraries and reports
// their files, NCCL's version and the number of visible devices. A build
// without cgo compiles, and New returns ErrNoCgo.
//
// # Building a group
//
// Each rank uses one CUDA device: OptDevice ("nccl.device") when given,
// otherwise its index among the group's ranks on its node (Members with
// the same Node), modulo the number of visible devices.
// CUDA_VISIBLE_DEVICES is applied by CUDA itself. NCCL refuses two ranks
// of one communicator on one GPU. Rank 0 makes the NCCL unique id and
// shares it through the group's rendezvous; every rank then joins with
// ncclCommInitRank, which returns once all have joined (New gives up when
// its ctx ends).
//
// # Operations on host slices
//
// Backend implements backend.Backend and the optional Reducer, Gatherer,
// Scatterer and AllToAller. Host slices are staged through device memory
// that each communicator keeps between calls, grown as needed up to
// OptStagingBytes (default 64 MiB); larger messages move in chunks. Gather,
// Scatter and AllToAll are groups of ncclSend and ncclRecv; Barrier is an
// allreduce of one element. Element types map to ncclFloat32, ncclFloat64,
// ncclInt32, ncclInt64, ncclUint8, ncclFloat16 and ncclBfloat16; bfloat16
// and avg need NCCL 2.10 or later, and an older NCCL gives an error that
// says so.
//
// Send and Recv use a two-rank communicator per ordered pair of ranks,
// built at the pair's first message from an id shared when the group was
// built (see OptP2P): on the group's communicator, two ranks sending to
// each other at once would deadlock.
//
// # Operations on device buffers
//
// Ranks whose data is already on the GPU call AllreduceDevice,
// ReduceDevice, BroadcastDevice, AllgatherDevice and ReduceScatterDevice
// with DeviceBuffers (a device address, a count and an element type) and
// a Stream. The operation is enqueued on that stream; with Wait the call
// polls the stream until it is done, with NoWait it returns at once and
// the caller orders later work after it or calls Synchronize. Alloc,
// Free, CopyToDevice, CopyFromDevice, NewStream and DestroyStream are
// small helpers for tests and examples.
//
// # Waiting, errors and threads
//
// A call waits by polling cudaStreamQuery and ncclCommGetAsyncError, never
// inside CUDA, so that it returns when its ctx ends. It then aborts the
// communicator (ncclCommAbort) and returns an error wrapping ctx.Err() and
// ErrAborted; an asynchronous NCCL error also aborts the communicator and
// is returned as an *NCCLError. After an abort every call on that
// communicator fails with ErrAborted. Failed CUDA calls are *CUDAError.
// Every error names the group, the rank and the operation.
//
// The CUDA device is current per OS thread, so every call runs on a
// goroutine locked to its thread, with the rank's device made current.
// Operations on the group's communicator run one at a time; each pair's
// communicator has its own lock, stream and staging memory.
//
// # Testing without a GPU
//
// The tests build a fake libnccl.so.2 and a fake CUDA runtime from C
// (testdata/fake, with gcc) in which device memory is host memory and the
// collectives really run among ranks in threads or processes through a
// file in /dev/shm named in the unique id. They run the backendtest
// suite, a multi-process group and every error path. gpucheck.sh runs the
// real NCCL on a machine with GPUs.
package nccl
