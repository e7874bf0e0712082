package shm

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Segment layout. Every offset is a multiple of 64, so every counter and
// buffer is aligned for any element type.
//
//	header     one page: magic, version and the geometry below, and on
//	           lines of their own the abort word (see Backend.markAbort)
//	           and the faster write mode (see tune.go)
//	counters   three lines per rank (arrive, reduced, release), then two
//	           lines (head, tail) per ordered pair of ranks for the rings
//	stages     two stages, each size slots of slot bytes, in rank order
//	rings      size×(size-1) rings of ring bytes, by ordered pair
//
// Each counter is a 64-bit value alone on a line of lineBytes, written by
// one rank only. The arrive line also holds the operation descriptors
// (see desc).
const (
	magic       = 0x6d68736f67796172 // "raygoshm", little-endian
	version     = 1
	pageBytes   = 4096
	lineBytes   = 128 // two cache lines, so that adjacent-line prefetch does not share them
	filePrefix  = "raygo-coll-"
	abortOff    = 2 * lineBytes
	fastModeOff = 3 * lineBytes
)

// Counter kinds: one line each per rank.
const (
	kArrive  = iota // steps whose data this rank has written
	kReduced        // steps whose share this rank has reduced (allreduce, reduce)
	kRelease        // steps this rank has finished reading
	nKinds
)

type geometry struct {
	size, slot, ring int
}

func (g geometry) pairs() int { return g.size * (g.size - 1) }

func (g geometry) ctrOff(rank, kind int) int {
	return pageBytes + (rank*nKinds+kind)*lineBytes
}

func (g geometry) ringCtrOff(pair, which int) int {
	return pageBytes + (g.size*nKinds+pair*2+which)*lineBytes
}

func (g geometry) stageOff() int {
	return roundPage(pageBytes + (g.size*nKinds+2*g.pairs())*lineBytes)
}

func (g geometry) slotOff(stage, rank int) int {
	return g.stageOff() + (stage*g.size+rank)*g.slot
}

func (g geometry) ringOff(pair int) int {
	return g.stageOff() + 2*g.size*g.slot + pair*g.ring
}

func (g geometry) total() int { return roundPage(g.ringOff(g.pairs())) }

func roundPage(n int) int { return (n + pageBytes - 1) &^ (pageBytes - 1) }

func (g geometry) writeHeader(mem []byte) {
	for i, v := range []uint64{version, uint64(g.size), uint64(g.slot), uint64(g.ring), uint64(g.total())} {
		binary.LittleEndian.PutUint64(mem[8+8*i:], v)
	}
	(*atomic.Uint64)(unsafe.Pointer(&mem[0])).Store(magic)
}

// checkHeader compares the header rank 0 wrote with this rank's geometry.
func (g geometry) checkHeader(mem []byte) error {
	if len(mem) < pageBytes || (*atomic.Uint64)(unsafe.Pointer(&mem[0])).Load() != magic {
		return errors.New("the file is not a raygo shm segment")
	}
	get := func(i int) int { return int(binary.LittleEndian.Uint64(mem[8+8*i:])) }
	if v := get(0); v != version {
		return fmt.Errorf("segment version %d, this rank speaks %d", v, version)
	}
	if s := get(1); s != g.size {
		return fmt.Errorf("segment made for %d ranks, this rank expects %d", s, g.size)
	}
	if s := get(2); s != g.slot {
		return fmt.Errorf("rank 0 uses %s=%d, this rank %d", OptSlotBytes, s, g.slot)
	}
	if r := get(3); r != g.ring {
		return fmt.Errorf("rank 0 uses %s=%d, this rank %d", OptRingBytes, r, g.ring)
	}
	if t := get(4); t != g.total() || len(mem) != t {
		return fmt.Errorf("segment holds %d bytes, expected %d", len(mem), g.total())
	}
	return nil
}

// segmentDir is where segments are made: /dev/shm when it is a
// directory, os.TempDir() otherwise.
func segmentDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// segmentName is a fresh file name for group's segment: the creator's
// pid (for sweepStale), a random token, and the group name made safe.
func segmentName(group string) (string, error) {
	var tok [8]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return "", err
	}
	safe := []byte(group)
	for i, c := range safe {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			safe[i] = '_'
		}
	}
	if len(safe) > 64 {
		safe = safe[:64]
	}
	return fmt.Sprintf("%s%d-%s-%s", filePrefix, os.Getpid(), hex.EncodeToString(tok[:]), safe), nil
}

// sweepStale removes segments in dir whose creator has died. A segment
// is unlinked as soon as every rank has mapped it, so one is left only
// when its creator was killed while building the group.
func sweepStale(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), filePrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if unix.Kill(pid, 0) == unix.ESRCH {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// createSegment creates, sizes and maps a new segment at path. Its pages
// are claimed with fallocate so that a full filesystem is reported here
// rather than as SIGBUS on a later write.
func createSegment(path string, g geometry) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	defer unix.Close(fd)
	size := int64(g.total())
	if err := unix.Ftruncate(fd, size); err != nil {
		return nil, fmt.Errorf("size %s to %d bytes: %w", path, size, err)
	}
	if err := claim(fd, size); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return nil, fmt.Errorf("claim %d bytes for %s (%s): %w", size, path, spaceReport(filepath.Dir(path)), err)
		}
		return nil, fmt.Errorf("claim %d bytes for %s: %w", size, path, err)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	g.writeHeader(mem)
	return mem, nil
}

// claim gives the file's first n bytes backing pages.
func claim(fd int, n int64) error {
	const chunk = 64 << 20 // tmpfs undoes a whole interrupted fallocate
	for off := int64(0); off < n; {
		c := min(n-off, chunk)
		switch err := unix.Fallocate(fd, 0, off, c); err {
		case nil:
			off += c
		case unix.EINTR:
		case unix.EOPNOTSUPP:
			return nil
		default:
			return err
		}
	}
	return nil
}

// spaceReport describes the free space of the filesystem holding dir.
func spaceReport(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return "free space of " + dir + " unknown"
	}
	return fmt.Sprintf("%d of %d bytes free in %s", st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize), dir)
}

// openSegment maps the segment rank 0 created at path and checks it.
func openSegment(path string, g geometry) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Size != int64(g.total()) {
		return nil, fmt.Errorf("%s holds %d bytes, expected %d (do the ranks agree on %s and %s?)", path, st.Size, g.total(), OptSlotBytes, OptRingBytes)
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	if err := g.checkHeader(mem); err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mem, nil
}

// anonSegment is the segment of a group of one: private memory, no file.
func anonSegment(g geometry) ([]byte, error) {
	mem, err := unix.Mmap(-1, 0, g.total(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes: %w", g.total(), err)
	}
	g.writeHeader(mem)
	return mem, nil
}
