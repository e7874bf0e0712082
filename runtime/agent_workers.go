package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/raygo/raygo/runtime/wire"
)

// Environment variables through which a node agent tells a worker process
// what it is. The secret travels only here, never on a command line.
const (
	EnvWorker  = "RAYGO_WORKER"      // "1" in worker processes
	EnvAgent   = "RAYGO_AGENT"       // the agent's socket
	EnvSlot    = "RAYGO_WORKER_SLOT" // the worker's slot within its job on this node
	EnvJob     = "RAYGO_JOB"         // the job it serves
	EnvSecret  = "RAYGO_SECRET"      // the cluster secret, hex
	EnvAddress = "RAYGO_ADDRESS"     // a cluster's head, for drivers that join one
)

// workerProc is a worker process this agent started for a job.
type workerProc struct {
	a         *Agent
	slot      uint32
	job       *job
	dedicated bool
	proc      *proc // once connected
	backlog   []wire.Msg
	tasks     taskMap[*execTask]
	actors    map[wire.ActorID]*localActor
	refused   error
	exited    bool

	mu  sync.Mutex // guards cmd
	cmd *exec.Cmd
}

func (w *workerProc) sendLocked(m wire.Msg) {
	if w.proc != nil {
		w.proc.conn.Send(m)
		return
	}
	w.backlog = append(w.backlog, m)
}

func (w *workerProc) pid() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil || w.cmd.Process == nil {
		return 0
	}
	return w.cmd.Process.Pid
}

// kill ends the process at once.
func (w *workerProc) kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil && w.cmd.Process != nil {
		w.cmd.Process.Kill()
	}
}

// stop asks the process to exit and kills it after grace.
func (w *workerProc) stop(grace time.Duration) {
	if w.proc != nil {
		w.proc.conn.Send(&wire.Shutdown{Reason: "no longer needed"})
	}
	go func() {
		time.Sleep(grace)
		w.kill()
	}()
}

func (a *Agent) sharedWorkerLocked(j *job) *workerProc {
	var best *workerProc
	shared := 0
	for _, w := range j.workers {
		if w.dedicated || w.exited || w.refused != nil {
			continue
		}
		shared++
		if best == nil || w.tasks.Len() < best.tasks.Len() {
			best = w
		}
	}
	if best == nil || (best.tasks.Len() > 0 && shared < a.cfg.Workers) {
		return a.startWorkerLocked(j, false, nil)
	}
	return best
}

// startWorkerLocked starts a worker process: the job's own binary, run
// again with the driver's arguments and the worker environment.
func (a *Agent) startWorkerLocked(j *job, dedicated bool, env map[string]string) *workerProc {
	j.nextSlot++
	w := &workerProc{a: a, slot: j.nextSlot, job: j, dedicated: dedicated,
		actors: map[wire.ActorID]*localActor{}}
	j.workers = append(j.workers, w)
	cmd := exec.Command(j.info.BinaryPath, j.info.Args...)
	cmd.Env = append(os.Environ(),
		EnvWorker+"=1",
		EnvAgent+"="+a.SocketAddr(),
		EnvSlot+"="+strconv.FormatUint(uint64(w.slot), 10),
		EnvJob+"="+strconv.FormatUint(j.info.ID, 10),
		EnvSecret+"="+a.secretHex(),
	)
	for k, v := range j.info.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Workers die with their agent, even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	w.cmd = cmd
	a.workerWG.Add(1)
	go func() {
		defer a.workerWG.Done()
		w.mu.Lock()
		err := cmd.Start()
		w.mu.Unlock()
		if err == nil {
			err = cmd.Wait()
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.workerExitedLocked(w, err)
	}()
	return w
}

// workerExitedLocked fails what the process was running.
func (a *Agent) workerExitedLocked(w *workerProc, err error) {
	w.exited = true
	j := w.job
	for i, x := range j.workers {
		if x == w {
			j.workers = append(j.workers[:i:i], j.workers[i+1:]...)
			break
		}
	}
	if w.proc != nil {
		w.proc.conn.Abort()
	}
	if a.stopped {
		return
	}
	why := "exited"
	if err != nil {
		why = err.Error()
	}
	if w.refused != nil {
		why = "refused: " + w.refused.Error()
	}
	pid := 0
	if w.cmd.Process != nil {
		pid = w.cmd.Process.Pid
	}
	for _, act := range w.actors {
		a.actorDiedLocked(act, &wire.TaskError{Kind: wire.ErrKindActorDied, Task: act.id, Name: act.class(), Node: a.id, Pid: int64(pid),
			Message: fmt.Sprintf("its worker process (pid %d) on node %d ended: %s", pid, a.id, why)}, true)
	}
	for _, et := range w.tasks.All() {
		kind := wire.ErrKindWorkerDied
		if et.cancelled {
			kind = wire.ErrKindCancelled
		}
		t := a.taskError(kind, et.spec, et.attempt, "worker process (pid %d) on node %d ended while running it: %s", pid, a.id, why)
		t.Pid = int64(pid)
		a.failExecLocked(et, t)
	}
	w.tasks = taskMap[*execTask]{}
	a.dispatchLocked()
}
