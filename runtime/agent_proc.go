package runtime

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/raygo/raygo/objstore"
	"github.com/raygo/raygo/runtime/wire"
)

// proc is a driver or worker process connected to this agent.
type proc struct {
	id   wire.ProcID
	role wire.Role
	pid  int64
	job  uint64
	conn *wire.Conn
	// held: refs it holds, released if it goes away; except its hold on
	// the objects it created, kept on the object (obj.creator) while it
	// lasts, which saves an entry per task a driver submits.
	held    idMap[int32]
	created bool // it created objects (see held)
	// viewing: objects it was sent a view of, pinned in the arena until
	// it stops holding them or goes away.
	viewing idMap[bool]
	worker  *workerProc // for workers
	gone    bool
}

// job is a driver program as seen by this node.
type job struct {
	info     wire.Job
	known    bool          // info has arrived (from the driver here, or the head's view)
	local    bool          // its driver is connected to this node
	driver   *proc         // when local
	pending  []*execTask   // tasks that arrived before the job's info
	workers  []*workerProc // its worker processes here
	nextSlot uint32
}

func jobID(node wire.NodeID, p wire.ProcID) uint64 { return uint64(node)<<32 | uint64(p) }

// admitProc checks a new driver or worker and registers it.
func (a *Agent) admitProc(conn *wire.Conn, h *wire.Hello) (*proc, error) {
	switch h.Role {
	case wire.RoleDriver:
		a.mu.Lock()
		if a.stopped {
			a.mu.Unlock()
			return nil, fmt.Errorf("node %d is stopping", a.id)
		}
		a.nextProc++
		p := &proc{id: a.nextProc, role: h.Role, pid: h.Pid, conn: conn}
		p.job = jobID(a.id, p.id)
		j := &job{known: true, local: true, driver: p, info: wire.Job{ID: p.job, BinaryPath: h.BinaryPath,
			BinaryHash: h.BinaryHash, RegistryHash: h.RegistryHash, Registry: h.Registry, Args: h.Args}}
		a.jobs[p.job] = j
		a.procs[p.id] = p
		a.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := a.headCalls.call(ctx, a.head, wire.OpJobRegister, encode(func(e *wire.Enc) { e.Job(&j.info) })); err != nil {
			a.mu.Lock()
			delete(a.jobs, p.job)
			delete(a.procs, p.id)
			a.mu.Unlock()
			return nil, fmt.Errorf("register job with head: %w", err)
		}
		conn.Send(a.welcome(p))
		return p, nil
	case wire.RoleWorker:
		a.mu.Lock()
		defer a.mu.Unlock()
		j := a.jobs[h.Job]
		if j == nil || !j.known {
			return nil, fmt.Errorf("worker for unknown job %d", h.Job)
		}
		var w *workerProc
		for _, x := range j.workers {
			if x.slot == h.Worker {
				w = x
			}
		}
		if w == nil || w.proc != nil {
			return nil, fmt.Errorf("worker slot %d of job %d was not started by this node", h.Worker, h.Job)
		}
		if err := sameProgram(&j.info, h); err != nil {
			w.refused = err
			return nil, err
		}
		a.nextProc++
		p := &proc{id: a.nextProc, role: h.Role, pid: h.Pid, job: h.Job, conn: conn, worker: w}
		a.procs[p.id] = p
		w.proc = p
		conn.Send(a.welcome(p))
		for _, m := range w.backlog {
			conn.Send(m)
		}
		w.backlog = nil
		return p, nil
	}
	return nil, fmt.Errorf("unexpected role %s", h.Role)
}

// sameProgram refuses a worker whose binary or registry differs from its
// driver's, naming the difference.
func sameProgram(j *wire.Job, h *wire.Hello) error {
	if h.BinaryHash != j.BinaryHash {
		return fmt.Errorf("worker binary %s (sha256 %.12s) differs from the driver's %s (sha256 %.12s): rebuild and copy the same binary to every node",
			h.BinaryPath, h.BinaryHash, j.BinaryPath, j.BinaryHash)
	}
	if h.RegistryHash != j.RegistryHash {
		missing, extra := diffNames(j.Registry, h.Registry)
		return fmt.Errorf("worker registry differs from the driver's: worker lacks %v, worker has extra %v (register functions and actors at package init, not conditionally)", missing, extra)
	}
	return nil
}

func diffNames(want, have []string) (missing, extra []string) {
	w := map[string]bool{}
	for _, n := range want {
		w[n] = true
	}
	h := map[string]bool{}
	for _, n := range have {
		h[n] = true
		if !w[n] {
			extra = append(extra, n)
		}
	}
	for _, n := range want {
		if !h[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return
}

// serveProc reads a local process's messages until it disconnects.
func (a *Agent) serveProc(p *proc) {
	for {
		m, err := p.conn.Recv()
		if err != nil {
			if !isClosed(err) {
				a.logf("%s %d (pid %d): %v", p.role, p.id, p.pid, err)
			}
			break
		}
		if r, ok := m.(*wire.Req); ok {
			a.procRequest(p, r)
			continue
		}
		// A busy process sends bursts (submissions, results, releases):
		// the messages already read are handled under one acquisition of
		// the lock, up to a bound that keeps other connections served.
		a.mu.Lock()
		ok := a.procMsgLocked(p, m)
		for n := 1; ok && n < procBurst && p.conn.FrameReady(); n++ {
			if m, err = p.conn.Recv(); err != nil {
				break
			}
			if r, isReq := m.(*wire.Req); isReq {
				a.mu.Unlock()
				a.procRequest(p, r)
				a.mu.Lock()
				continue
			}
			ok = a.procMsgLocked(p, m)
		}
		a.mu.Unlock()
		if err != nil {
			if !isClosed(err) {
				a.logf("%s %d (pid %d): %v", p.role, p.id, p.pid, err)
			}
			break
		}
		if !ok {
			p.conn.Abort()
			break
		}
	}
	p.conn.Close()
	a.procGone(p)
}

// procBurst bounds the messages from one process handled under one
// acquisition of the agent's lock.
const procBurst = 64

// procMsgLocked handles a message from process p other than a request. It
// returns false for a message a process must not send.
func (a *Agent) procMsgLocked(p *proc, m wire.Msg) bool {
	switch m := m.(type) {
	case *wire.Submit:
		a.submitLocked(p, &m.Spec)
	case *wire.Put:
		a.putLocked(p, m)
	case *wire.Refs:
		for i, id := range m.IDs {
			a.procRefLocked(p, id, m.Deltas[i])
		}
	case *wire.Subscribe:
		for _, id := range m.IDs {
			a.subscribeProcLocked(p, id)
		}
	case *wire.Done:
		a.workerDoneLocked(p, m)
	case *wire.Cancel:
		a.cancelLocked(m.Task, m.Force)
	case *wire.KillActor:
		a.killActorLocked(m.Actor, m.NoRestart)
	default:
		a.logf("%s %d sent unexpected %s message; dropping it", p.role, p.id, m.Type())
		return false
	}
	return true
}

// procRefLocked applies a change in the references process p holds to id.
func (a *Agent) procRefLocked(p *proc, id wire.ObjectID, d int32) {
	n := p.held.Get(id) + d
	if o := a.objs.Get(id); o != nil && o.creator == p.id {
		// p's hold as the object's creator: it moves to p.held, or ends.
		o.creator = 0
		n++
	}
	if n <= 0 {
		p.held.Delete(id)
		if p.viewing.Get(id) {
			p.viewing.Delete(id)
			a.unpinLocked(id)
		}
	} else {
		p.held.Set(id, n)
	}
	a.refLocked(id, d)
}

// holdsLocked says whether process p holds a reference to o.
func (p *proc) holdsLocked(o *obj) bool {
	return o.creator == p.id || p.held.Get(o.id) > 0
}

func isClosed(err error) bool {
	s := err.Error()
	return strings.Contains(s, "EOF") || strings.Contains(s, "closed") || strings.Contains(s, "reset by peer")
}

func (a *Agent) procGone(p *proc) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p.gone = true
	delete(a.procs, p.id)
	for id, n := range p.held.All() {
		a.refLocked(id, -n)
	}
	p.held = idMap[int32]{}
	if p.created {
		var ids []wire.ObjectID
		for id, o := range a.objs.Of(a.id, p.id) { // what p made has IDs of its own
			if o.creator == p.id {
				o.creator = 0
				ids = append(ids, id)
			}
		}
		for _, id := range ids {
			a.refLocked(id, -1)
		}
	}
	for id := range p.viewing.All() {
		a.unpinLocked(id)
	}
	p.viewing = idMap[bool]{}
	if p.role == wire.RoleDriver {
		a.endJobLocked(p.job)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a.headCalls.call(ctx, a.head, wire.OpJobEnd, encode(func(e *wire.Enc) { e.Uvarint(p.job) }))
		}()
	}
}

// endJobLocked stops a job's workers on this node and forgets its tasks.
func (a *Agent) endJobLocked(id uint64) {
	j := a.jobs[id]
	if j == nil {
		return
	}
	delete(a.jobs, id)
	for _, w := range j.workers {
		w.stop(2 * time.Second)
	}
	for _, ot := range a.owned.All() {
		if ot.spec.Job == id {
			ot.proc = nil
			a.finishLocked(ot, nil, a.taskError(wire.ErrKindCancelled, &ot.spec, ot.attempt, "its driver exited"))
		}
	}
	for aid, act := range a.actors {
		if act.create != nil && act.create.spec.Job == id {
			a.actorDiedLocked(act, &wire.TaskError{Kind: wire.ErrKindActorDied, Task: aid, Name: act.class(), Node: a.id, Message: "its driver exited"}, false)
			delete(a.actors, aid)
		}
	}
	for aid, oa := range a.ownActors {
		if oa.spec.Job == id {
			a.unpinActorArgsLocked(oa)
			delete(a.ownActors, aid)
		}
	}
	for tid, et := range a.running.All() {
		if et.spec.Job == id {
			a.releaseLocked(et)
			a.unpinExecLocked(et)
			a.running.Delete(tid)
		}
	}
	a.loadGen++
}

// procRequest serves a request from a local process: store reservations
// here, everything else at the head.
func (a *Agent) procRequest(p *proc, r *wire.Req) {
	switch r.Op {
	case wire.OpCreate:
		var id wire.ObjectID
		var size uint64
		var off int64
		err := decodeBody(r.Body, func(d *wire.Dec) { id = d.ObjectID(); size = d.Uvarint() })
		if err == nil {
			off, err = a.reserve(id, int64(size))
			if errors.Is(err, objstore.ErrFull) {
				err = fmt.Errorf("node %d: %w: %v", a.id, ErrStoreFull, err)
			} else if err != nil {
				err = fmt.Errorf("node %d: reserve %s: %w", a.id, id, err)
			}
		}
		var body []byte
		if err == nil {
			body = encode(func(e *wire.Enc) { e.Uvarint(uint64(off)) })
		}
		reply(p.conn, r.ID, body, err)
	case wire.OpRelease:
		var id wire.ObjectID
		err := decodeBody(r.Body, func(d *wire.Dec) { id = d.ObjectID() })
		if err == nil {
			a.store.Release(id.FileName())
		}
		reply(p.conn, r.ID, nil, err)
	case wire.OpPGCreate, wire.OpPGRemove, wire.OpPGWait, wire.OpKVPut, wire.OpKVGet, wire.OpKVWait,
		wire.OpKVList, wire.OpKVDelete, wire.OpActorLookup, wire.OpActorPlace, wire.OpStatus, wire.OpActorLocate:
		// Sent now, from this connection's reader, so the head sees a
		// process's requests in the order it made them (a placement
		// group's removal after its creation, which nobody waited for).
		conn, rid := p.conn, r.ID
		err := a.headCalls.send(a.head, r.Op, r.Body, func(rep *wire.Rep) {
			conn.Send(&wire.Rep{ID: rid, Body: rep.Body, Err: rep.Err, Code: rep.Code})
		})
		if err != nil {
			reply(conn, rid, nil, err)
		}
	default:
		reply(p.conn, r.ID, nil, fmt.Errorf("%w: unknown op %d", ErrInvalid, r.Op))
	}
}
