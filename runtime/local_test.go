package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestSweepStaleStores(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, pid int) string {
		d := filepath.Join(dir, name)
		os.Mkdir(d, 0o700)
		os.WriteFile(filepath.Join(d, "arena"), []byte("x"), 0o600)
		if pid != 0 {
			os.WriteFile(filepath.Join(d, ownerFile), []byte(fmt.Sprintf("%d\n", pid)), 0o600)
		}
		return d
	}
	stale := mk("raygo-aaaa-1", dead.Process.Pid)
	live := mk("raygo-bbbb-1", os.Getpid())
	unowned := mk("raygo-cccc-1", 0)
	other := mk("not-raygo", dead.Process.Pid)
	SweepStaleStores(dir)
	for d, want := range map[string]bool{stale: false, live: true, unowned: true, other: true} {
		_, err := os.Stat(d)
		if got := err == nil; got != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(d), got, want)
		}
	}
}
