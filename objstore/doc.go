// Package objstore is the per-node shared-memory object store.
//
// A node's objects live in one arena: a sparse file on tmpfs (/dev/shm, or
// os.TempDir when /dev/shm is missing or not writable; see DefaultDir) as
// large as the store's limit. Objects are page-aligned extents of it.
//
//   - The node agent owns the only *Store. Reserve allocates an extent
//     (first fit, neighbours merged on free) and claims its pages with
//     fallocate, so a full tmpfs fails there with ErrNoSpace instead of
//     with SIGBUS on some later write; Seal marks the object complete;
//     Delete and Release free the extent; Close removes the arena.
//
//   - Every process on the node maps the arena once (OpenArena) and keeps
//     the mapping: writers fill their reserved extent through Writable,
//     readers get zero-copy, read-only slices through View.
//
//     agent:  off, err := store.Reserve(name, size)      (err may be a *FullError)
//     writer: b, _ := arena.Writable(off, size); copy(b, data)
//     agent:  store.Seal(name)                           (store.Release if the writer failed)
//     reader: v, _ := arena.View(off, size)              (no copy, no system call)
//     agent:  store.Delete(name)
//
// Because mappings are long-lived, a put is one memcpy into pages that are
// already mapped and (after their first use) already resident, and a get
// costs nothing: no mmap, no page-table setup, no munmap per object, and no
// risk of a view faulting because its object was unmapped. The price is
// that a freed extent is reused: a view's bytes belong to its object only
// while the object exists, which the runtime ensures while any reference
// to it is held. The arena keeps the pages it has used (never more than
// the limit); Resident reports how many.
//
// Object names are 1 to MaxNameLen characters from [A-Za-z0-9._-], other
// than "." and ".."; see CheckName.
package objstore
