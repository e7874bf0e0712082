// Package objstore is the per-node shared-memory object store.
//
// Large objects live as files in one directory per node, on tmpfs
// (/dev/shm, or os.TempDir when /dev/shm is missing or not writable; see
// DefaultDir). Every process on the node reaches an object by its path:
//
//   - The node agent owns the only *Store for the directory. The Store does
//     the accounting: Reserve admits an object against Config.Limit, Seal
//     marks it complete once its file has the reserved size, Delete and
//     Release give the bytes back, Close removes the directory.
//   - A writer (a worker, the driver, or the agent itself through
//     Store.Create) calls CreateFile on the reserved path, or OpenWritable
//     when Reserve recycled a file (below), and gets a writable shared
//     mapping. CreateFile allocates the whole file up front, so a full
//     tmpfs fails there with ErrNoSpace instead of with SIGBUS on some
//     later write.
//   - Readers call Map and get a zero-copy, read-only view of the file
//     (PROT_READ, MAP_SHARED): writing to it faults.
//
// The protocol across processes is therefore
//
//	agent:  recycled, err := Reserve(name, size)   (err may be a *FullError)
//	writer: CreateFile(Path(name), size), or OpenWritable(Path(name), size)
//	        if recycled -> write all of Bytes() -> Close
//	agent:  Seal(name)                   (or Release(name) if the writer failed)
//	reader: Map(Path(name))              -> read Bytes() -> Close
//	agent:  Delete(name)
//
// # The pool of freed files
//
// Filling a new tmpfs file costs far more than copying the bytes: the
// kernel must hand out and zero every page. So Delete keeps the file of a
// sealed object of at least MinPoolSize bytes in a pool (up to
// MaxPoolFiles files, under names no object can have), and a later Reserve
// of a size the file fits (at most a quarter smaller, or the same number
// of pages) renames it to the new object, cuts it to size and reports
// recycled = true. The writer then opens it with OpenWritable and
// overwrites pages that are already resident; it must write every byte,
// since the old object's bytes are still there. Pooled files hold memory,
// so they count against the Limit (Pooled reports them; Used does not),
// and Reserve unlinks them, oldest first, when it needs their room. Only
// a reservation that does not fit even with the pool empty fails.
//
// On a 2-vCPU VM where memcpy into resident memory runs at ~23 GB/s, a
// recycled 1 GiB put ran at ~6 GB/s on /dev/shm with 4 KiB pages (a new
// file: ~1.5 GB/s), still bound by building and tearing down one page
// table entry per page in the writer, and at ~24 GB/s on a tmpfs mounted
// with huge=within_size. Mount the store's tmpfs that way where you can.
//
// A mapping stays valid, with its bytes, after Delete or Store.Close:
// tmpfs keeps the pages until the last mapping is gone, so a reader never
// faults because an object was deleted under it, and Delete never pools
// a file that any process still has open or mapped (it asks the kernel for
// a write lease, which is refused while the file has other opens or
// mappings); such a file is unlinked instead. The bytes stop counting
// against the Limit at Delete, though; the agent must only delete objects
// nobody still reads if the Limit is to bound memory.
//
// Object names are 1 to MaxNameLen characters from [A-Za-z0-9._-], other
// than "." and ".."; see CheckName.
package objstore
