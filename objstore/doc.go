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
//     Store.Create) calls CreateFile on the reserved path. CreateFile
//     allocates the whole file up front, so a full tmpfs fails there with
//     ErrNoSpace instead of with SIGBUS on some later write, and returns a
//     writable shared mapping.
//   - Readers call Map and get a zero-copy, read-only view of the file
//     (PROT_READ, MAP_SHARED): writing to it faults.
//
// The protocol across processes is therefore
//
//	agent:  Reserve(name, size)          -> ok, or *FullError
//	writer: CreateFile(Path(name), size) -> write Bytes() -> Close
//	agent:  Seal(name)                   (or Release(name) if the writer failed)
//	reader: Map(Path(name))              -> read Bytes() -> Close
//	agent:  Delete(name)
//
// A mapping stays valid after Delete or Store.Close: tmpfs keeps the pages
// until the last mapping is gone, so a reader never faults because an
// object was deleted under it. The bytes stop counting against the Limit
// at Delete, though; the agent must only delete objects nobody still reads
// if the Limit is to bound memory.
//
// Object names are 1 to MaxNameLen characters from [A-Za-z0-9._-], other
// than "." and ".."; see CheckName.
package objstore
