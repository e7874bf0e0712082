package raygo

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Notice is an early warning from the batch system, such as Slurm's
// `#SBATCH --signal=USR1@120` two minutes before the time limit.
type Notice struct {
	Signal  os.Signal
	Time    time.Time
	Message string
}

var job struct {
	once     sync.Once
	mu       sync.Mutex // guards ctx, cancel and watching
	ctx      context.Context
	cancel   context.CancelFunc
	notices  chan Notice
	stop     chan struct{}
	watching bool
}

func jobInit() {
	job.once.Do(func() {
		job.ctx, job.cancel = context.WithCancel(context.Background())
		job.notices = make(chan Notice, 16)
		job.stop = make(chan struct{})
	})
}

// JobContext returns a context that ends when the job is asked to stop:
// under raygo-launch, when the batch system sends SIGTERM (scancel, the
// time limit) or SIGINT; everywhere, at Shutdown. Pass it to long work so a
// stopped job can checkpoint and return; raygo-launch kills the driver if it
// has not exited within its grace period (--grace, default 10 s).
func JobContext() context.Context {
	jobInit()
	job.mu.Lock()
	defer job.mu.Unlock()
	return job.ctx
}

func endJob() {
	jobInit()
	job.mu.Lock()
	job.cancel()
	job.mu.Unlock()
}

// Notices delivers early warnings (SIGUSR1, SIGUSR2, SIGHUP) that reach a
// driver running under raygo-launch. The channel is buffered; warnings that
// find it full are dropped.
func Notices() <-chan Notice {
	jobInit()
	return job.notices
}

// watchSignals turns the batch system's signals into JobContext and
// Notices. Only under raygo-launch: elsewhere the program keeps Go's
// default handling (a SIGTERM ends it).
func watchSignals() {
	jobInit()
	job.mu.Lock()
	defer job.mu.Unlock()
	if job.ctx.Err() != nil {
		// A new Init after Shutdown starts a new job context.
		job.ctx, job.cancel = context.WithCancel(context.Background())
	}
	if os.Getenv("RAYGO_LAUNCH") != "1" || job.watching {
		return
	}
	job.watching = true
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		last := map[os.Signal]time.Time{}
		for {
			select {
			case s := <-ch:
				now := time.Now()
				// raygo-launch passes on what Slurm may also have sent us
				// directly: count one signal once.
				if now.Sub(last[s]) < 500*time.Millisecond {
					continue
				}
				last[s] = now
				switch s {
				case syscall.SIGTERM, syscall.SIGINT:
					endJob()
				default:
					msg := "early warning from the batch system"
					if s == syscall.SIGUSR1 || s == syscall.SIGUSR2 {
						msg = "early warning (for example the time limit is near)"
					}
					select {
					case job.notices <- Notice{Signal: s, Time: now, Message: msg}:
					default:
					}
				}
			case <-job.stop:
				return
			}
		}
	}()
}
