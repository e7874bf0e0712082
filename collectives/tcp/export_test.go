package tcp

import (
	"syscall"

	"github.com/raygo/raygo/collectives/backend"
)

// crash shuts b's connections down the way the kernel does when its
// process dies: no bye, no abort.
func crash(b backend.Backend) {
	c := b.(*comm)
	for j := range c.slots {
		if p := c.slots[j].p.Load(); p != nil {
			syscall.Shutdown(p.fd, syscall.SHUT_RDWR)
		}
	}
}
