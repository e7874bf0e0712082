package launcher

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestSweepStateDirs(t *testing.T) {
	base := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, pid int) string {
		d := filepath.Join(base, name)
		os.MkdirAll(filepath.Join(d, "node"), 0o700)
		if pid > 0 {
			os.WriteFile(filepath.Join(d, "owner"), []byte(fmt.Sprintf("%d\n", pid)), 0o600)
		}
		return d
	}
	stale := mk("rgl-1", dead.Process.Pid)
	live := mk("rgl-2", os.Getpid())
	unowned := mk("rgl-3", 0)
	mine := mk("rgl-4", dead.Process.Pid)
	sweepStateDirs(base, mine)
	for d, want := range map[string]bool{stale: false, live: true, unowned: true, mine: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}
