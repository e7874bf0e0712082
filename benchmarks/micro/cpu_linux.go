package micro

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// treeCPU is the CPU time used so far by this process and its children,
// the worker processes of the embedded cluster: its own, that of children
// it has reaped, and that of children still running. On a shared machine
// it varies far less than throughput does with the load of other users.
func treeCPU() (time.Duration, bool) {
	self := os.Getpid()
	f, ok := statFields(self)
	if !ok {
		return 0, false
	}
	ticks := f.utime + f.stime + f.cutime + f.cstime
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if c, ok := statFields(pid); ok && c.ppid == self {
			ticks += c.utime + c.stime
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, true
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

func statFields(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3, the state
	if len(f) < 15 {
		return procStat{}, false
	}
	num := func(k int) int64 { // field k, numbered as in proc(5)
		v, _ := strconv.ParseInt(string(f[k-3]), 10, 64)
		return v
	}
	return procStat{ppid: int(num(4)), utime: num(14), stime: num(15), cutime: num(16), cstime: num(17)}, true
}
