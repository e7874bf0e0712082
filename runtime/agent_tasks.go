package runtime

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/raygo/raygo/runtime/wire"
)

// ownedTask is a task submitted on this node, from submission until its
// results are recorded. Its owner node decides where it runs and retries.
//
// A node holds one per queued task: the fields are ordered to leave little
// padding (the size class is 256 bytes).
type ownedTask struct {
	spec        wire.TaskSpec
	proc        *proc // the submitter
	upstream    *wire.TaskError
	callq       *callQueue
	attempt     uint32
	deps        int32 // arguments not ready yet (+1 while registering)
	node        wire.NodeID
	retries     int32 // left; negative: unlimited
	reroutes    int32 // times an actor call was sent again after its actor moved
	lostRetries int32 // runs again after an argument could not be fetched
	cancelled   bool
	scheduled   bool
	rebuild     bool // a run to rebuild lost results from lineage
}

// maxLostRetries bounds the runs again after an argument could not be
// fetched; with their backoff they span well over the time a dead node
// takes to be declared (runtime.DefaultDeadAfter).
const maxLostRetries = 8

// maxReroutes bounds how often one actor call follows its actor around.
const maxReroutes = 20

// execTask is a task running (or about to) on this node.
//
// A node holds one per queued task: what few tasks need lives apart, in
// execMore (the size class is 80 bytes, not 176).
type execTask struct {
	spec      *wire.TaskSpec
	worker    *workerProc
	failed    *wire.TaskError
	lease     *lease
	args      []wire.ArgValue
	more      *execMore // nil until needed
	attempt   uint32
	waiting   int32
	inBundle  bool // in placement group bundle bundle()
	acquired  bool
	resolved  bool
	cancelled bool
}

// execMore is the part of a running task's record that only some tasks need.
type execMore struct {
	gpus []string
	pins []wire.ObjectID // arguments its worker was sent views of
}

func (et *execTask) x() *execMore {
	if et.more == nil {
		et.more = &execMore{}
	}
	return et.more
}

// gpus are the GPUs it was given.
func (et *execTask) gpus() []string {
	if et.more == nil {
		return nil
	}
	return et.more.gpus
}

// bundle is the placement group bundle it runs in, when inBundle. (Its
// owner fixed the bundle in the spec before sending it.)
func (et *execTask) bundle() bundleKey {
	return bundleKey{et.spec.Strategy.Group, int(et.spec.Strategy.Bundle)}
}

// lease is a run of short tasks of one function handed to one worker to
// run back to back under the resources the first one took. It saves a round
// trip through the agent per task when tasks are far shorter than that trip;
// the worker starts the next one anyway if the current one runs long, so a
// task waiting on another in its lease cannot deadlock.
type lease struct {
	id     uint64
	left   int // tasks of the lease not yet finished
	holder *execTask
	worker *workerProc
}

// Leases are sized so a lease holds about leaseBudget of work.
const (
	leaseBudgetMicros = 2000
	maxLease          = 32
)

type taskQueue struct {
	tasks []*execTask
}

type bundleKey struct {
	group uint64
	index int
}

type bundle struct {
	total, avail wire.Resources
	gpus         []string
	removed      bool
}

type callKey struct {
	proc  wire.ProcID
	actor wire.ActorID
}

// callQueue holds one caller's calls to one actor in submission order.
type callQueue struct {
	key   callKey
	tasks []*ownedTask
}

type actorRoute struct {
	node      wire.NodeID
	dead      *wire.TaskError
	resolving bool
}

type groupRoute struct {
	nodes   []wire.NodeID
	ready   bool
	err     *wire.TaskError
	waiting []*ownedTask
	next    int
}

// Actor states on the node that hosts it.
const (
	actorStarting uint8 = iota
	actorAlive
	actorDead
)

type localActor struct {
	restartable bool // died in a way its owner may restart it from
	id          wire.ActorID
	create      *execTask
	worker      *workerProc
	state       uint8
	dead        *wire.TaskError
	order       []*execTask // calls not yet handed to the worker, in arrival order
}

func (act *localActor) class() string {
	if act.create != nil {
		return act.create.spec.Func
	}
	return "actor"
}

func newExecTask(spec *wire.TaskSpec, attempt uint32) *execTask {
	et := &execTask{spec: spec, attempt: attempt}
	et.inBundle = spec.Strategy.Kind == wire.StrategyPlacementGroup && spec.Kind != wire.KindActorCall
	return et
}

func (a *Agent) taskError(kind uint8, spec *wire.TaskSpec, attempt uint32, format string, args ...any) *wire.TaskError {
	return &wire.TaskError{Kind: kind, Task: spec.ID, Name: displayName(spec), Node: a.id, Attempt: attempt,
		Message: fmt.Sprintf(format, args...)}
}

func displayName(s *wire.TaskSpec) string {
	if s.Name != "" {
		return s.Name
	}
	if s.Kind == wire.KindActorCall {
		return s.Func + "." + s.Method
	}
	return s.Func
}

// ---- the owner's side ----

func (a *Agent) submitLocked(p *proc, spec *wire.TaskSpec) {
	ot := &ownedTask{spec: *spec, proc: p, retries: spec.MaxRetries}
	ot.spec.Func = a.internLocked(spec.Func)
	ot.spec.Method = a.internLocked(spec.Method)
	id := spec.ID
	if id.Node != a.id || id.Proc != p.id {
		// IDs are the submitter's: they say whose the results are.
		a.logf("process %d submitted task %s, an ID it did not make; ignored", p.id, id)
		return
	}
	if _, dup := a.owned.Lookup(id); dup {
		a.logf("duplicate task ID %s from process %d; ignored", id, p.id)
		return
	}
	a.owned.Set(id, ot)
	for i := uint32(1); i <= spec.NumReturns; i++ {
		oid := wire.ObjectID{Task: id, Index: i}
		o := &obj{id: oid, owned: true, state: objPending, refs: 1, creator: p.id}
		o.takeWaiters(a.objs.Get(oid))
		a.objs.Set(oid, o)
		p.created = true
	}
	if spec.Kind == wire.KindActorCall {
		k := callKey{p.id, spec.Actor}
		cq := a.calls[k]
		if cq == nil {
			cq = &callQueue{key: k}
			a.calls[k] = cq
		}
		cq.tasks = append(cq.tasks, ot)
		ot.callq = cq
	}
	if spec.Kind == wire.KindActorCreate {
		a.routes[id] = &actorRoute{resolving: true}
		a.ownActors[id] = &ownedActor{spec: *spec}
	}
	a.loadGen++
	for i := range spec.Args {
		if spec.Args[i].IsRef {
			a.refLocked(spec.Args[i].Ref, 1)
		}
	}
	a.awaitArgsLocked(ot)
}

// internLocked returns the node's copy of a function or method name, so
// the tasks queued here share one string per name instead of one each.
func (a *Agent) internLocked(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := a.names[s]; ok {
		return c
	}
	if len(a.names) < maxInterned {
		a.names[s] = s
	}
	return s
}

// maxInterned bounds the names interned: there are as many as registered
// functions and methods, unless a process sends made-up ones.
const maxInterned = 1 << 14

// awaitArgsLocked runs ot once every Ref argument is ready (or failed).
func (a *Agent) awaitArgsLocked(ot *ownedTask) {
	ot.deps = 1
	for i := range ot.spec.Args {
		arg := &ot.spec.Args[i]
		if !arg.IsRef {
			continue
		}
		ot.deps++
		a.whenReadyLocked(arg.Ref, func(o *obj) {
			if o.state == objFailed && ot.upstream == nil {
				ot.upstream = o.err
			}
			ot.deps--
			if ot.deps == 0 {
				a.readyToRunLocked(ot)
			}
		})
	}
	ot.deps--
	if ot.deps == 0 {
		a.readyToRunLocked(ot)
	}
}

func (a *Agent) readyToRunLocked(ot *ownedTask) {
	if a.owned.Get(ot.spec.ID) != ot {
		return
	}
	if ot.callq != nil {
		a.drainCallsLocked(ot.callq)
		return
	}
	if ot.cancelled {
		a.finishLocked(ot, nil, a.taskError(wire.ErrKindCancelled, &ot.spec, ot.attempt, "cancelled before it started"))
		return
	}
	if ot.upstream != nil {
		a.finishLocked(ot, nil, a.upstreamError(&ot.spec, ot.attempt, ot.upstream))
		return
	}
	a.scheduleLocked(ot)
}

func (a *Agent) upstreamError(spec *wire.TaskSpec, attempt uint32, cause *wire.TaskError) *wire.TaskError {
	t := a.taskError(wire.ErrKindUpstream, spec, attempt, "an argument failed: %s", cause.Message)
	t.Cause = cause
	return t
}

func (a *Agent) scheduleLocked(ot *ownedTask) {
	node, terr := a.pickNodeLocked(ot)
	if terr != nil {
		a.finishLocked(ot, nil, terr)
		return
	}
	if node == 0 {
		return // waiting for its placement group
	}
	ot.node = node
	ot.scheduled = true
	if ot.spec.Kind == wire.KindActorCreate {
		r := a.routes[ot.spec.ID]
		if r == nil {
			r = &actorRoute{}
			a.routes[ot.spec.ID] = r
		}
		r.node, r.resolving, r.dead = node, false, nil
		a.drainActorCallsLocked(ot.spec.ID)
	}
	a.runOnLocked(node, &ot.spec, ot.attempt)
}

func (a *Agent) runOnLocked(node wire.NodeID, spec *wire.TaskSpec, attempt uint32) {
	if node == a.id {
		a.admitLocked(newExecTask(spec, attempt))
		return
	}
	if n, ok := a.view[node]; ok && n.Available != nil && spec.Kind != wire.KindActorCall {
		sub(n.Available, spec.Resources) // optimistic, until the next view
	}
	a.sendPeerLocked(node, &wire.Forward{Spec: *spec, Attempt: attempt})
}

// pickNodeLocked chooses where a task or actor runs. 0 with no error means
// it waits (for its placement group).
func (a *Agent) pickNodeLocked(ot *ownedTask) (wire.NodeID, *wire.TaskError) {
	spec := &ot.spec
	need := spec.Resources
	st := spec.Strategy
	switch st.Kind {
	case wire.StrategyNode:
		n, ok := a.view[st.Node]
		if ok && n.Alive && fits(need, n.Total) {
			return st.Node, nil
		}
		if !st.Soft {
			why := "is not in the cluster"
			if ok && !n.Alive {
				why = "is dead"
			} else if ok {
				why = fmt.Sprintf("has only %v", n.Total)
			}
			return 0, a.taskError(wire.ErrKindUnschedulable, spec, ot.attempt, "node affinity: node %d %s (needs %v)", st.Node, why, need)
		}
	case wire.StrategyPlacementGroup:
		return a.pickBundleLocked(ot)
	case wire.StrategySpread:
		nodes := a.aliveLocked()
		var fit, free []wire.NodeID
		for _, n := range nodes {
			if fits(need, n.total) {
				fit = append(fit, n.id)
				if fits(need, n.avail) {
					free = append(free, n.id)
				}
			}
		}
		if len(fit) == 0 {
			return 0, a.taskError(wire.ErrKindUnschedulable, spec, ot.attempt, "no node has %v", need)
		}
		pool := free
		if len(pool) == 0 {
			pool = fit
		}
		a.spread++
		return pool[a.spread%len(pool)], nil
	}
	// Default: here if it fits now; else the node holding most of its
	// inputs, or any node with room; else queue here, or on a node that
	// could ever run it.
	if fits(need, a.avail) && a.queuedLocked() == 0 {
		return a.id, nil
	}
	if n := a.localityLocked(spec); n != 0 && n != a.id {
		if v, ok := a.view[n]; ok && v.Alive && fits(need, v.Available) {
			return n, nil
		}
	}
	if n := a.freeRemoteLocked(need); n != 0 {
		return n, nil
	}
	if fits(need, a.cfg.Resources) {
		return a.id, nil
	}
	for _, n := range a.aliveLocked() {
		if fits(need, n.total) {
			return n.id, nil
		}
	}
	return 0, a.taskError(wire.ErrKindUnschedulable, spec, ot.attempt, "no node in the cluster has %v", need)
}

func (a *Agent) aliveLocked() []nodeRes {
	out := make([]nodeRes, 0, len(a.view))
	for _, n := range a.view {
		if !n.Alive {
			continue
		}
		r := nodeRes{id: n.ID, total: n.Total, avail: n.Available}
		if n.ID == a.id {
			r.avail = a.avail
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// freeRemoteLocked picks another node with room now, the one with the most
// free CPU.
func (a *Agent) freeRemoteLocked(need wire.Resources) wire.NodeID {
	var best wire.NodeID
	bestCPU := -1.0
	for _, n := range a.view {
		if n.ID == a.id || !n.Alive || !fits(need, n.Available) {
			continue
		}
		if c := n.Available["CPU"]; c > bestCPU || (c == bestCPU && n.ID < best) {
			best, bestCPU = n.ID, c
		}
	}
	return best
}

// localityLocked is the node holding the most bytes of a task's arguments.
func (a *Agent) localityLocked(spec *wire.TaskSpec) wire.NodeID {
	var best wire.NodeID
	var bestBytes uint64
	for i := range spec.Args {
		if !spec.Args[i].IsRef {
			continue
		}
		o := a.objs.Get(spec.Args[i].Ref)
		if o == nil || !o.val.InStore || o.val.Size < bestBytes {
			continue
		}
		best, bestBytes = o.val.Node, o.val.Size
	}
	return best
}

func (a *Agent) queuedLocked() int {
	n := 0
	for _, q := range a.queues {
		n += len(q.tasks)
	}
	return n
}

func (a *Agent) pickBundleLocked(ot *ownedTask) (wire.NodeID, *wire.TaskError) {
	gid := ot.spec.Strategy.Group
	g := a.groups[gid]
	if g == nil {
		if len(a.groups) >= maxGroupRoutes {
			// Groups come and go (a tuning job makes one per trial) and
			// no one says when one goes: forget the resolved ones, to be
			// asked for again if used again.
			for id, r := range a.groups {
				if r.ready {
					delete(a.groups, id)
				}
			}
		}
		g = &groupRoute{}
		a.groups[gid] = g
		go a.resolveGroup(gid, g)
	}
	if g.err != nil {
		return 0, a.taskError(wire.ErrKindUnschedulable, &ot.spec, ot.attempt, "placement group %d: %s", gid, g.err.Message)
	}
	if !g.ready {
		g.waiting = append(g.waiting, ot)
		return 0, nil
	}
	b := int(ot.spec.Strategy.Bundle)
	if b < 0 {
		b = g.next % len(g.nodes)
		g.next++
		ot.spec.Strategy.Bundle = int32(b)
	}
	if b >= len(g.nodes) {
		return 0, a.taskError(wire.ErrKindUnschedulable, &ot.spec, ot.attempt, "placement group %d has %d bundles, not bundle %d", gid, len(g.nodes), b)
	}
	return g.nodes[b], nil
}

// maxGroupRoutes bounds the placement groups whose bundles' nodes an
// agent remembers.
const maxGroupRoutes = 4096

func (a *Agent) resolveGroup(gid uint64, g *groupRoute) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-a.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer cancel()
	body, err := a.headCalls.call(ctx, a.head, wire.OpPGWait, encode(func(e *wire.Enc) { e.Uvarint(gid); e.Uvarint(uint64(24 * time.Hour / time.Millisecond)) }))
	var nodes []wire.NodeID
	if err == nil {
		err = decodeBody(body, func(d *wire.Dec) {
			n := d.Len(4)
			for i := 0; i < n; i++ {
				nodes = append(nodes, wire.NodeID(d.U32()))
			}
		})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		g.err = &wire.TaskError{Kind: wire.ErrKindUnschedulable, Node: a.id, Message: err.Error()}
		delete(a.groups, gid) // a later task asks again
	} else {
		g.nodes, g.ready = nodes, true
	}
	ws := g.waiting
	g.waiting = nil
	for _, ot := range ws {
		if a.owned.Get(ot.spec.ID) == ot {
			a.scheduleLocked(ot)
		}
	}
}

// drainCallsLocked sends a caller's actor calls whose arguments are ready,
// in order, stopping at the first that is not.
func (a *Agent) drainCallsLocked(cq *callQueue) {
	for len(cq.tasks) > 0 {
		ot := cq.tasks[0]
		if a.owned.Get(ot.spec.ID) != ot {
			cq.tasks = cq.tasks[1:]
			continue
		}
		if ot.deps > 0 {
			return
		}
		if ot.cancelled {
			cq.tasks = cq.tasks[1:]
			a.finishLocked(ot, nil, a.taskError(wire.ErrKindCancelled, &ot.spec, ot.attempt, "cancelled before it started"))
			continue
		}
		if ot.upstream != nil {
			cq.tasks = cq.tasks[1:]
			a.finishLocked(ot, nil, a.upstreamError(&ot.spec, ot.attempt, ot.upstream))
			continue
		}
		r := a.routeLocked(ot.spec.Actor)
		if r == nil {
			return
		}
		cq.tasks = cq.tasks[1:]
		if r.dead != nil {
			terr := a.taskError(wire.ErrKindActorDied, &ot.spec, ot.attempt, "actor %s (%s) is dead", ot.spec.Actor, ot.spec.Func)
			terr.Cause = r.dead
			a.finishLocked(ot, nil, terr)
			continue
		}
		ot.node, ot.scheduled = r.node, true
		a.runOnLocked(r.node, &ot.spec, ot.attempt)
	}
	if len(cq.tasks) == 0 {
		delete(a.calls, cq.key)
	}
}

func (a *Agent) drainActorCallsLocked(actor wire.ActorID) {
	for k, cq := range a.calls {
		if k.actor == actor {
			a.drainCallsLocked(cq)
		}
	}
}

// routeLocked is where an actor lives, or nil while that is being found out.
func (a *Agent) routeLocked(actor wire.ActorID) *actorRoute {
	r := a.routes[actor]
	if r != nil {
		if r.resolving {
			return nil
		}
		return r
	}
	r = &actorRoute{resolving: true}
	a.routes[actor] = r
	go a.locateActor(actor, r)
	return nil
}

func (a *Agent) locateActor(actor wire.ActorID, r *actorRoute) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-a.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer cancel()
	body, err := a.headCalls.call(ctx, a.head, wire.OpActorLocate, encode(func(e *wire.Enc) { e.TaskID(actor) }))
	var node wire.NodeID
	var dead string
	if err == nil {
		err = decodeBody(body, func(d *wire.Dec) { node = wire.NodeID(d.U32()); dead = d.Str() })
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r.resolving = false
	switch {
	case err != nil:
		r.dead = &wire.TaskError{Kind: wire.ErrKindActorDied, Task: actor, Node: a.id, Message: "cannot locate actor: " + err.Error()}
	case dead != "":
		r.dead = &wire.TaskError{Kind: wire.ErrKindActorDied, Task: actor, Node: node, Message: dead}
	default:
		r.node = node
	}
	a.drainActorCallsLocked(actor)
}

// completeLocked takes a task's outcome at its owner: retry, or record it.
func (a *Agent) completeLocked(d *wire.Done) {
	ot := a.owned.Get(d.Task)
	if ot == nil || d.Attempt != ot.attempt {
		return
	}
	if d.Err != nil && !ot.cancelled && ot.spec.Kind == wire.KindActorCall &&
		(d.Err.Kind == wire.ErrKindActorMoved || (d.Err.Kind == wire.ErrKindActorDied && ot.retries != 0)) && ot.reroutes < maxReroutes {
		// The actor is restarting or elsewhere: ask where it is and send
		// the call again (a call that had started counts as a retry).
		ot.reroutes++
		if d.Err.Kind == wire.ErrKindActorDied && ot.retries > 0 {
			ot.retries--
		}
		ot.attempt++
		ot.node, ot.scheduled = 0, false
		if r := a.routes[ot.spec.Actor]; r != nil && !r.resolving && (r.dead == nil || d.Err.Kind == wire.ErrKindActorMoved) {
			delete(a.routes, ot.spec.Actor)
		}
		cq := ot.callq
		if cq == nil {
			cq = &callQueue{key: callKey{0, ot.spec.Actor}}
		}
		if cur := a.calls[cq.key]; cur != nil {
			cq = cur
		} else {
			a.calls[cq.key] = cq
		}
		ot.callq = cq
		cq.tasks = append([]*ownedTask{ot}, cq.tasks...)
		a.drainCallsLocked(cq)
		return
	}
	if d.Err != nil && d.Err.Kind == wire.ErrKindObjectLost && ot.spec.Kind == wire.KindTask && !ot.cancelled && ot.lostRetries < maxLostRetries {
		// An argument could not be fetched: most likely the node holding
		// it just died, which this node may not know yet. Try again a
		// little later, when the argument's owner has rebuilt it (or
		// declared it lost for good); this does not use up MaxRetries.
		ot.lostRetries++
		ot.attempt++
		ot.node, ot.scheduled = 0, false
		delay := (50 * time.Millisecond) << min(ot.lostRetries, 5)
		a.logf("task %s (%s): %s; trying again in %v", ot.spec.ID, displayName(&ot.spec), d.Err.Message, delay)
		time.AfterFunc(delay, func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.owned.Get(ot.spec.ID) == ot && !ot.cancelled && !a.stopped {
				a.scheduleLocked(ot)
			}
		})
		return
	}
	if d.Err != nil && !ot.cancelled && a.retryableLocked(ot, d.Err) {
		if ot.retries > 0 {
			ot.retries--
		}
		ot.attempt++
		ot.node, ot.scheduled = 0, false
		a.logf("task %s (%s) attempt %d failed (%s); retrying", ot.spec.ID, displayName(&ot.spec), d.Attempt, d.Err.Message)
		if ot.spec.Kind == wire.KindActorCall {
			a.runOnAfterRouteLocked(ot)
			return
		}
		a.scheduleLocked(ot)
		return
	}
	if d.Err != nil && ot.cancelled && d.Err.Kind != wire.ErrKindCancelled {
		d.Err = a.taskError(wire.ErrKindCancelled, &ot.spec, ot.attempt, "cancelled: %s", d.Err.Message)
	}
	a.finishLocked(ot, d.Results, d.Err)
}

func (a *Agent) runOnAfterRouteLocked(ot *ownedTask) {
	r := a.routeLocked(ot.spec.Actor)
	if r == nil || r.dead != nil {
		terr := a.taskError(wire.ErrKindActorDied, &ot.spec, ot.attempt, "actor %s is not available for a retry", ot.spec.Actor)
		a.finishLocked(ot, nil, terr)
		return
	}
	ot.node = r.node
	a.runOnLocked(r.node, &ot.spec, ot.attempt)
}

func (a *Agent) retryableLocked(ot *ownedTask, e *wire.TaskError) bool {
	if ot.retries == 0 {
		return false
	}
	switch e.Kind {
	case wire.ErrKindWorkerDied:
		return ot.spec.Kind == wire.KindTask
	case wire.ErrKindApp, wire.ErrKindPanic:
		return ot.spec.RetryAppErrors && ot.spec.Kind == wire.KindTask
	}
	return false
}

// finishLocked records a task's return values (or its error) and lets go
// of its arguments.
func (a *Agent) finishLocked(ot *ownedTask, results []wire.Value, terr *wire.TaskError) {
	spec := &ot.spec
	a.owned.Delete(spec.ID)
	a.loadGen++
	if terr == nil && uint32(len(results)) != spec.NumReturns {
		terr = a.taskError(wire.ErrKindSystem, spec, ot.attempt, "returned %d values, want %d", len(results), spec.NumReturns)
	}
	if ot.rebuild && terr == nil {
		a.rebuiltLocked(ot, results)
		return
	}
	for i := uint32(1); i <= spec.NumReturns; i++ {
		oid := wire.ObjectID{Task: spec.ID, Index: i}
		o := a.objs.Get(oid)
		if o == nil || !o.owned {
			o = &obj{id: oid, owned: true}
			a.objs.Set(oid, o)
		}
		if ot.rebuild && o.state != objPending {
			continue // a copy survived; the failed rebuild changes nothing
		}
		if terr != nil {
			o.state, o.err = objFailed, terr
		} else {
			o.state, o.val = objReady, results[i-1]
			o.val.Data = detach(o.val.Data)
			if o.val.InStore {
				o.x().locs = []wire.NodeID{o.val.Node}
				o.here = o.val.Node == a.id
				a.touchLocked(o)
			}
		}
		a.readyLocked(o)
		// Stored results are not pushed: the submitter subscribes when it
		// gets them, so only processes that read a stored object pin it.
		if p := ot.proc; p != nil && !p.gone && p.holdsLocked(o) {
			if o.state == objFailed || !o.val.InStore {
				a.objMsg = wire.Object{ID: oid, Value: o.val, Err: o.err}
				p.conn.Send(&a.objMsg) // encoded at once: the message is reused
				a.objMsg = wire.Object{}
			} else if o.submitterWaits {
				a.subscribeProcLocked(p, oid) // ready: sent now, or once pulled here
			}
		}
		o.submitterWaits = false
		if o.refs <= 0 {
			a.freeLocked(o)
		}
	}
	// A restartable actor keeps its constructor's arguments for restarts;
	// a task whose results are in a store keeps them as lineage, to run
	// again if the results are lost; a rebuild runs under its lineage's pins.
	keepArgs := spec.Kind == wire.KindActorCreate && terr == nil && spec.MaxRestarts != 0 && spec.NumReturns > 0
	if !keepArgs && !ot.rebuild && terr == nil {
		keepArgs = a.recordLineageLocked(ot, results)
	}
	if ot.rebuild {
		keepArgs = true
		if l := a.lineage[spec.ID]; l != nil {
			l.running = false
		}
	}
	for i := range spec.Args {
		if spec.Args[i].IsRef && !keepArgs {
			a.refLocked(spec.Args[i].Ref, -1)
		}
	}
	if spec.Kind == wire.KindActorCreate && terr != nil {
		r := a.routes[spec.ID]
		if r == nil {
			r = &actorRoute{}
			a.routes[spec.ID] = r
		}
		r.resolving = false
		r.dead = terr
		a.drainActorCallsLocked(spec.ID)
	}
}

// cancelLocked cancels a task this node owns.
func (a *Agent) cancelLocked(id wire.TaskID, force bool) {
	ot := a.owned.Get(id)
	if ot == nil {
		return
	}
	ot.cancelled = true
	if !ot.scheduled {
		if ot.callq != nil {
			for i, x := range ot.callq.tasks {
				if x == ot {
					ot.callq.tasks = append(ot.callq.tasks[:i:i], ot.callq.tasks[i+1:]...)
					break
				}
			}
		}
		a.finishLocked(ot, nil, a.taskError(wire.ErrKindCancelled, &ot.spec, ot.attempt, "cancelled before it started"))
		return
	}
	if ot.node == a.id {
		a.cancelExecLocked(id, force)
	} else {
		a.sendPeerLocked(ot.node, &wire.Cancel{Task: id, Force: force})
	}
}

// ---- the executing node's side ----

// admitLocked takes a task to run on this node.
func (a *Agent) admitLocked(et *execTask) {
	spec := et.spec
	j := a.jobs[spec.Job]
	if j == nil {
		j = &job{}
		a.jobs[spec.Job] = j
	}
	if !j.known {
		j.pending = append(j.pending, et)
		return
	}
	a.running.Set(spec.ID, et)
	a.loadGen++
	switch spec.Kind {
	case wire.KindActorCall:
		act := a.actors[spec.Actor]
		if act == nil || (act.state == actorDead && act.restartable) {
			a.failExecLocked(et, a.taskError(wire.ErrKindActorMoved, spec, et.attempt, "actor %s is not on node %d", spec.Actor, a.id))
			return
		}
		if act.state == actorDead {
			terr := a.taskError(wire.ErrKindActorDied, spec, et.attempt, "actor %s (%s) is dead", spec.Actor, spec.Func)
			terr.Cause = act.dead
			a.failExecLocked(et, terr)
			return
		}
		act.order = append(act.order, et)
		a.resolveArgsLocked(et, func() { a.pumpActorLocked(act) })
		return
	case wire.KindActorCreate:
		a.actors[spec.ID] = &localActor{id: spec.ID, create: et}
	}
	// Arguments first, resources after: a task waiting for an argument
	// (perhaps one being rebuilt, which needs a CPU itself) holds none.
	if len(spec.Args) == 0 {
		et.resolved = true
		a.enqueueLocked(et)
		return
	}
	a.resolveArgsLocked(et, func() { a.enqueueLocked(et) })
}

// enqueueLocked queues a task whose arguments are resolved, by the shape
// of the resources it needs.
func (a *Agent) enqueueLocked(et *execTask) {
	if et.failed != nil {
		a.failExecLocked(et, et.failed)
		a.dispatchLocked()
		return
	}
	k := shapeKey(et)
	q := a.queues[k]
	if q == nil {
		q = &taskQueue{}
		a.queues[k] = q
		a.qorder = append(a.qorder, k)
	}
	q.tasks = append(q.tasks, et)
	a.dispatchLocked()
}

func shapeKey(et *execTask) string {
	var b strings.Builder
	if et.inBundle {
		b.WriteString("pg")
		k := et.bundle()
		b.WriteString(strconv.FormatUint(k.group, 10))
		b.WriteByte('.')
		b.WriteString(strconv.Itoa(k.index))
		b.WriteByte('|')
	}
	r := et.spec.Resources
	if !et.inBundle && len(r) == 1 && r["CPU"] == 1 {
		return "CPU=1" // most tasks: no string built
	}
	if len(r) == 1 {
		for k, v := range r {
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
		return b.String()
	}
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.FormatFloat(r[k], 'g', -1, 64))
		b.WriteByte(',')
	}
	return b.String()
}

// dispatchLocked starts every queued task that fits, then offers tasks
// that cannot start here to other nodes with room.
func (a *Agent) dispatchLocked() {
	if a.stopped {
		return
	}
	live := a.qorder[:0]
	for _, k := range a.qorder {
		q := a.queues[k]
		for len(q.tasks) > 0 {
			et := q.tasks[0]
			if a.running.Get(et.spec.ID) != et {
				q.tasks = q.tasks[1:]
				continue
			}
			ok, terr := a.acquireLocked(et)
			if terr != nil {
				q.tasks = q.tasks[1:]
				a.failExecLocked(et, terr)
				continue
			}
			if !ok {
				break
			}
			q.tasks = q.tasks[1:]
			a.startLocked(et)
			if depth := a.leaseDepthLocked(et); depth > 1 {
				a.nextLease++
				l := &lease{id: a.nextLease, left: 1, holder: et}
				et.lease = l
				for len(q.tasks) > 0 && l.left < depth {
					nx := q.tasks[0]
					if a.running.Get(nx.spec.ID) != nx {
						q.tasks = q.tasks[1:]
						continue
					}
					if !leasable(nx) || nx.spec.Func != et.spec.Func || nx.spec.Job != et.spec.Job {
						break
					}
					q.tasks = q.tasks[1:]
					nx.lease = l
					l.left++
					a.startLocked(nx)
				}
			}
		}
		for len(q.tasks) > 0 && a.othersAlive > 0 {
			et := q.tasks[0]
			if a.running.Get(et.spec.ID) != et {
				q.tasks = q.tasks[1:]
				continue
			}
			if et.inBundle || et.spec.Strategy.Kind != wire.StrategyDefault || et.spec.ID.Node != a.id || et.spec.Kind != wire.KindTask {
				break
			}
			ot := a.owned.Get(et.spec.ID)
			n := a.freeRemoteLocked(et.spec.Resources)
			if n == 0 || ot == nil {
				break
			}
			q.tasks = q.tasks[1:]
			a.running.Delete(et.spec.ID)
			ot.node = n
			a.runOnLocked(n, &ot.spec, ot.attempt)
		}
		if len(q.tasks) == 0 {
			delete(a.queues, k)
			continue
		}
		if cap(q.tasks) > 1024 && len(q.tasks) < cap(q.tasks)/4 {
			q.tasks = append([]*execTask(nil), q.tasks...)
		}
		live = append(live, k)
	}
	a.qorder = live
}

// noGPUEnv is the environment of tasks without GPUs (shared, read-only).
var noGPUEnv = map[string]string{"CUDA_VISIBLE_DEVICES": ""}

func leasable(et *execTask) bool {
	s := et.spec
	return s.Kind == wire.KindTask && !s.Dedicated && !et.inBundle && s.Resources["GPU"] == 0 && !et.cancelled
}

// leaseDepthLocked is how many tasks of et's function to hand its worker at
// once, from how long the function has been running.
func (a *Agent) leaseDepthLocked(et *execTask) int {
	if !leasable(et) {
		return 1
	}
	avg, ok := a.fnMicros[et.spec.Func]
	if !ok {
		return 1
	}
	d := int(leaseBudgetMicros / max(avg, 1))
	return min(max(d, 1), maxLease)
}

// taskEndedLocked returns a finished task's resources, or its lease's once
// the lease's last task is done.
func (a *Agent) taskEndedLocked(et *execTask) {
	l := et.lease
	if l == nil {
		a.releaseLocked(et)
		return
	}
	et.lease = nil
	l.left--
	if l.left == 0 {
		a.releaseLocked(l.holder)
	}
}

// acquireLocked takes a task's resources from the node or its bundle.
func (a *Agent) acquireLocked(et *execTask) (bool, *wire.TaskError) {
	pool := a.avail
	gpuPool := &a.freeGPUs
	if et.inBundle {
		k := et.bundle()
		b := a.bundles[k]
		if b == nil {
			return false, a.taskError(wire.ErrKindUnschedulable, et.spec, et.attempt,
				"placement group %d bundle %d is not reserved on node %d (removed?)", k.group, k.index, a.id)
		}
		if !fits(et.spec.Resources, b.total) {
			return false, a.taskError(wire.ErrKindUnschedulable, et.spec, et.attempt,
				"needs %v, more than placement group %d bundle %d holds (%v)", et.spec.Resources, k.group, k.index, b.total)
		}
		pool = b.avail
		gpuPool = &b.gpus
	}
	if !fits(et.spec.Resources, pool) {
		return false, nil
	}
	sub(pool, et.spec.Resources)
	if g := et.spec.Resources["GPU"]; g > 0 {
		n := int(math.Ceil(g))
		if n > len(*gpuPool) {
			add(pool, et.spec.Resources)
			return false, nil
		}
		et.x().gpus = append([]string(nil), (*gpuPool)[:n]...)
		*gpuPool = (*gpuPool)[n:]
	}
	et.acquired = true
	a.loadGen++
	return true, nil
}

func (a *Agent) releaseLocked(et *execTask) {
	if !et.acquired {
		return
	}
	et.acquired = false
	a.loadGen++
	if et.inBundle {
		b := a.bundles[et.bundle()]
		if b == nil {
			return // the bundle was removed and its resources returned whole
		}
		add(b.avail, et.spec.Resources)
		b.gpus = append(b.gpus, et.gpus()...)
		return
	}
	add(a.avail, et.spec.Resources)
	a.freeGPUs = append(a.freeGPUs, et.gpus()...)
}

// startLocked resolves a task's arguments, then hands it to a worker.
func (a *Agent) startLocked(et *execTask) {
	a.sendExecLocked(et)
}

// resolveArgsLocked gathers a task's argument values, fetching objects to
// this node as needed, then calls then.
func (a *Agent) resolveArgsLocked(et *execTask, then func()) {
	spec := et.spec
	et.args = make([]wire.ArgValue, len(spec.Args))
	et.waiting = 1
	done := func() {
		et.waiting--
		if et.waiting == 0 {
			et.resolved = true
			if a.running.Get(spec.ID) == et {
				then()
			}
		}
	}
	for i := range spec.Args {
		arg := &spec.Args[i]
		if !arg.IsRef {
			et.args[i].Value = wire.Value{Data: arg.Data, Size: uint64(len(arg.Data))}
			continue
		}
		et.waiting++
		i := i
		a.whenReadyLocked(arg.Ref, func(o *obj) {
			if o.state == objFailed {
				if et.failed == nil {
					et.failed = a.upstreamError(spec, et.attempt, o.err)
				}
				done()
				return
			}
			a.localizeLocked(o, func(err error) {
				if err != nil && et.failed == nil {
					et.failed = a.taskError(wire.ErrKindObjectLost, spec, et.attempt, "argument %d: %v", i, err)
				}
				// Where it is here (arena or spill file) is looked up
				// when the task is sent: see execArgsLocked.
				v := o.val
				if v.InStore && err == nil {
					v.Node = a.id
				}
				et.args[i] = wire.ArgValue{ID: arg.Ref, Value: v}
				done()
			})
		})
	}
	done()
}

// execArgsLocked fills in where each stored argument is on this node and
// pins those its worker will read in the arena, until the task ends.
func (a *Agent) execArgsLocked(et *execTask) *wire.TaskError {
	for i := range et.args {
		arg := &et.args[i]
		if !arg.Value.InStore {
			continue
		}
		o := a.objs.Get(arg.ID)
		if o == nil {
			return a.taskError(wire.ErrKindObjectLost, et.spec, et.attempt, "argument %d: %s is not on node %d", i, arg.ID, a.id)
		}
		v, ok := a.localValueLocked(o, true)
		if !ok {
			return a.taskError(wire.ErrKindObjectLost, et.spec, et.attempt, "argument %d: %s is not in node %d's store", i, arg.ID, a.id)
		}
		if v.Spilled == "" {
			x := et.x()
			x.pins = append(x.pins, arg.ID)
		}
		v.Contained = arg.Value.Contained
		arg.Value = v
	}
	return nil
}

// unpinExecLocked lets go of a task's pins on its arguments.
func (a *Agent) unpinExecLocked(et *execTask) {
	if et.more == nil {
		return
	}
	for _, id := range et.more.pins {
		a.unpinLocked(id)
	}
	et.more.pins = nil
}

func (a *Agent) sendExecLocked(et *execTask) {
	if et.failed == nil {
		et.failed = a.execArgsLocked(et)
	}
	if et.failed != nil {
		a.failExecLocked(et, et.failed)
		return
	}
	if et.cancelled {
		a.failExecLocked(et, a.taskError(wire.ErrKindCancelled, et.spec, et.attempt, "cancelled before it started"))
		return
	}
	j := a.jobs[et.spec.Job]
	if j == nil {
		a.failExecLocked(et, a.taskError(wire.ErrKindSystem, et.spec, et.attempt, "its job ended"))
		return
	}
	var w *workerProc
	var env map[string]string
	if gpus := et.gpus(); len(gpus) > 0 {
		env = map[string]string{"CUDA_VISIBLE_DEVICES": strings.Join(gpus, ",")}
	} else if et.spec.Resources["GPU"] == 0 {
		env = noGPUEnv
	}
	var leaseID uint64
	switch {
	case et.spec.Dedicated || len(et.gpus()) > 0:
		w = a.startWorkerLocked(j, true, env)
	case et.lease != nil:
		l := et.lease
		if l.worker == nil || l.worker.exited {
			l.worker = a.sharedWorkerLocked(j)
		}
		w, leaseID = l.worker, l.id
	default:
		w = a.sharedWorkerLocked(j)
	}
	et.worker = w
	w.tasks.Set(et.spec.ID, et)
	if et.spec.Kind == wire.KindActorCreate {
		if act := a.actors[et.spec.ID]; act != nil {
			act.worker = w
			w.actors[et.spec.ID] = act
		}
	}
	if w.proc == nil {
		w.sendLocked(&wire.Exec{Spec: *et.spec, Attempt: et.attempt, Args: et.args, Env: env, Lease: leaseID})
		return
	}
	// Encoded at once: the message is reused.
	a.execMsg = wire.Exec{Spec: *et.spec, Attempt: et.attempt, Args: et.args, Env: env, Lease: leaseID}
	w.sendLocked(&a.execMsg)
	a.execMsg = wire.Exec{}
}

// pumpActorLocked hands an actor its calls whose arguments are ready, in
// arrival order.
func (a *Agent) pumpActorLocked(act *localActor) {
	for len(act.order) > 0 {
		et := act.order[0]
		if a.running.Get(et.spec.ID) != et {
			act.order = act.order[1:]
			continue
		}
		if act.state == actorDead {
			act.order = act.order[1:]
			kind := wire.ErrKindActorDied
			if act.restartable {
				kind = wire.ErrKindActorMoved // it never started here: send it to the next incarnation
			}
			terr := a.taskError(kind, et.spec, et.attempt, "actor %s (%s) is dead", act.id, et.spec.Func)
			terr.Cause = act.dead
			a.failExecLocked(et, terr)
			continue
		}
		if act.state != actorAlive || !et.resolved {
			return
		}
		act.order = act.order[1:]
		if et.failed == nil {
			et.failed = a.execArgsLocked(et)
		}
		if et.failed != nil {
			a.failExecLocked(et, et.failed)
			continue
		}
		et.worker = act.worker
		act.worker.tasks.Set(et.spec.ID, et)
		act.worker.sendLocked(&wire.Exec{Spec: *et.spec, Attempt: et.attempt, Args: et.args})
	}
}

// workerDoneLocked takes a finished task from a worker.
func (a *Agent) workerDoneLocked(p *proc, d *wire.Done) {
	et := a.running.Get(d.Task)
	if et == nil || et.attempt != d.Attempt || et.worker == nil || et.worker.proc != p {
		for i, r := range d.Results {
			if r.InStore {
				a.store.Release(wire.ObjectID{Task: d.Task, Index: uint32(i + 1)}.FileName())
			}
		}
		return
	}
	a.running.Delete(d.Task)
	et.worker.tasks.Delete(d.Task)
	a.unpinExecLocked(et)
	for i := range d.Results {
		r := &d.Results[i]
		oid := wire.ObjectID{Task: d.Task, Index: uint32(i + 1)}
		if r.InStore {
			if err := a.store.Seal(oid.FileName()); err != nil {
				d.Err = a.taskError(wire.ErrKindSystem, et.spec, et.attempt, "store result %d: %v", i+1, err)
				d.Results = nil
				break
			}
			r.Node = a.id
			if oid.Owner() != a.id {
				// A copy here now. Something here may already wait for this
				// object (a rebuild's result that other tasks here need):
				// keep its waiters and wake them.
				o := a.objs.Get(oid)
				if o == nil || o.owned {
					o = &obj{id: oid}
					a.objs.Set(oid, o)
				}
				o.state, o.val, o.err, o.here = objReady, *r, nil, true
				a.touchLocked(o)
				a.readyLocked(o)
			}
		}
		for _, c := range r.Contained {
			a.rawRefLocked(c, 1)
		}
	}
	if d.Err != nil && et.cancelled {
		d.Err.Kind = wire.ErrKindCancelled
	}
	switch et.spec.Kind {
	case wire.KindActorCreate:
		act := a.actors[et.spec.ID]
		if act != nil && d.Err == nil && act.state == actorStarting {
			act.state = actorAlive
			spec := et.spec
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err := a.headCalls.call(ctx, a.head, wire.OpActorPlace, encode(func(e *wire.Enc) {
					e.TaskID(spec.ID)
					e.U32(uint32(a.id))
					e.Str(spec.Namespace)
					e.Str(spec.ActorName)
					e.Str(spec.Func)
				}))
				if err != nil {
					a.logf("record actor %s at the head: %v", spec.ID, err)
				}
			}()
			a.pumpActorLocked(act)
		} else if act != nil && d.Err != nil {
			a.actorDiedLocked(act, d.Err, false)
		}
	case wire.KindTask:
		if d.Micros > 0 {
			us := float64(d.Micros)
			if old, ok := a.fnMicros[et.spec.Func]; ok {
				us = 0.8*old + 0.2*us
			}
			a.fnMicros[et.spec.Func] = us
		}
		a.taskEndedLocked(et)
		if et.worker.dedicated {
			et.worker.stop(2 * time.Second)
		}
	}
	a.routeDoneLocked(et, d)
	a.dispatchLocked()
}

// rawRefLocked changes an object's count at its owner directly (for pins
// that one node takes and another releases).
func (a *Agent) rawRefLocked(id wire.ObjectID, delta int32) {
	if id.Owner() == a.id {
		a.refLocked(id, delta)
		return
	}
	a.sendPeerLocked(id.Owner(), &wire.Refs{IDs: []wire.ObjectID{id}, Deltas: []int32{delta}})
}

func (a *Agent) routeDoneLocked(et *execTask, d *wire.Done) {
	if origin := et.spec.ID.Node; origin != a.id {
		a.sendPeerLocked(origin, d)
		return
	}
	a.completeLocked(d)
}

// failExecLocked ends a task on this node with an error.
func (a *Agent) failExecLocked(et *execTask, terr *wire.TaskError) {
	a.unpinExecLocked(et)
	if a.running.Get(et.spec.ID) == et {
		a.running.Delete(et.spec.ID)
	}
	if et.worker != nil {
		et.worker.tasks.Delete(et.spec.ID)
	}
	switch et.spec.Kind {
	case wire.KindActorCreate:
		if act := a.actors[et.spec.ID]; act != nil {
			a.actorDiedLocked(act, terr, false)
		}
	case wire.KindTask:
		a.taskEndedLocked(et)
	}
	a.routeDoneLocked(et, &wire.Done{Task: et.spec.ID, Attempt: et.attempt, Err: terr})
}

// cancelExecLocked cancels a task on this node.
func (a *Agent) cancelExecLocked(id wire.TaskID, force bool) {
	et := a.running.Get(id)
	if et == nil {
		return
	}
	et.cancelled = true
	if et.worker == nil {
		a.failExecLocked(et, a.taskError(wire.ErrKindCancelled, et.spec, et.attempt, "cancelled before it started"))
		a.dispatchLocked()
		return
	}
	if force {
		a.logf("force-cancelling task %s: killing worker pid %d", id, et.worker.pid())
		et.worker.kill()
		return
	}
	et.worker.sendLocked(&wire.Cancel{Task: id})
}

// killActorLocked kills an actor wherever it lives.
func (a *Agent) killActorLocked(actor wire.ActorID, noRestart bool) {
	r := a.routes[actor]
	if r != nil && !r.resolving && r.dead == nil {
		if r.node == a.id {
			a.killLocalActorLocked(actor, "killed by its caller")
		} else {
			a.sendPeerLocked(r.node, &wire.KillActor{Actor: actor, NoRestart: noRestart})
		}
		return
	}
	if r != nil && r.dead != nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		body, err := a.headCalls.call(ctx, a.head, wire.OpActorLocate, encode(func(e *wire.Enc) { e.TaskID(actor) }))
		var node wire.NodeID
		var dead string
		if err == nil {
			err = decodeBody(body, func(d *wire.Dec) { node = wire.NodeID(d.U32()); dead = d.Str() })
		}
		if err != nil || dead != "" {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if node == a.id {
			a.killLocalActorLocked(actor, "killed by its caller")
		} else {
			a.sendPeerLocked(node, &wire.KillActor{Actor: actor, NoRestart: noRestart})
		}
	}()
}

func (a *Agent) killLocalActorLocked(actor wire.ActorID, why string) {
	act := a.actors[actor]
	if act == nil || act.state == actorDead {
		return
	}
	w := act.worker
	a.actorDiedLocked(act, &wire.TaskError{Kind: wire.ErrKindActorDied, Task: actor, Name: act.class(), Node: a.id, Message: why}, false)
	if w != nil {
		if w.dedicated {
			w.kill()
		} else {
			w.sendLocked(&wire.KillActor{Actor: actor})
		}
	}
}

// actorDiedLocked marks an actor dead here, fails its queued calls, frees
// its resources and tells the head.
func (a *Agent) actorDiedLocked(act *localActor, terr *wire.TaskError, restartable bool) {
	if act.state == actorDead {
		return
	}
	act.state = actorDead
	act.dead = terr
	act.restartable = restartable
	if act.create != nil {
		a.releaseLocked(act.create)
	}
	if act.worker != nil {
		delete(act.worker.actors, act.id)
		for id, et := range act.worker.tasks.All() {
			if et.spec.Kind == wire.KindActorCall && et.spec.Actor == act.id {
				act.worker.tasks.Delete(id)
				t := a.taskError(wire.ErrKindActorDied, et.spec, et.attempt, "actor %s (%s) died during the call", act.id, et.spec.Func)
				t.Cause = terr
				a.failExecLocked(et, t)
			}
		}
	}
	a.pumpActorLocked(act)
	a.loadGen++
	// The actor's owner decides whether it restarts.
	down := &wire.ActorDown{Actor: act.id, Restartable: restartable, Err: terr}
	if owner := act.id.Node; owner != a.id {
		if r := a.routes[act.id]; r != nil && r.node == a.id {
			delete(a.routes, act.id)
		}
		a.sendPeerLocked(owner, down)
	} else {
		a.actorDownLocked(down)
	}
}

// ownedActor is what the node that created an actor keeps to restart it.
type ownedActor struct {
	spec     wire.TaskSpec // the creation
	restarts int32
	dead     bool
	unpinned bool
}

// unpinActorArgsLocked lets go of the constructor arguments a restartable
// actor kept.
func (a *Agent) unpinActorArgsLocked(oa *ownedActor) {
	if oa.spec.MaxRestarts == 0 || oa.unpinned {
		return
	}
	oa.unpinned = true
	for i := range oa.spec.Args {
		if oa.spec.Args[i].IsRef {
			a.refLocked(oa.spec.Args[i].Ref, -1)
		}
	}
}

// actorDownLocked decides, at the actor's owner, whether a stopped actor
// restarts (a new process runs its constructor again; its state is lost)
// or is dead for good.
func (a *Agent) actorDownLocked(m *wire.ActorDown) {
	id := m.Actor
	oa := a.ownActors[id]
	if oa == nil || oa.dead {
		return
	}
	r := a.routes[id]
	if r == nil {
		r = &actorRoute{}
		a.routes[id] = r
	}
	max := oa.spec.MaxRestarts
	if m.Restartable && (max < 0 || oa.restarts < max) && a.jobs[oa.spec.Job] != nil {
		oa.restarts++
		a.logf("actor %s (%s) stopped (%s); restart %d of %d", id, oa.spec.Func, m.Err.Message, oa.restarts, max)
		r.node, r.dead, r.resolving = 0, nil, true
		go a.headCalls.call(context.Background(), a.head, wire.OpActorMoving, encode(func(e *wire.Enc) { e.TaskID(id) }))
		spec := oa.spec
		spec.NumReturns = 0 // the first creation's result already exists
		ot := &ownedTask{spec: spec, attempt: uint32(oa.restarts), retries: 0}
		a.owned.Set(id, ot)
		for i := range spec.Args {
			if spec.Args[i].IsRef {
				a.refLocked(spec.Args[i].Ref, 1)
			}
		}
		a.scheduleLocked(ot)
		return
	}
	oa.dead = true
	a.unpinActorArgsLocked(oa)
	why := m.Err.Message
	if m.Restartable && max != 0 {
		why = fmt.Sprintf("%s (after %d restarts)", why, oa.restarts)
	}
	terr := &wire.TaskError{Kind: wire.ErrKindActorDied, Task: id, Name: oa.spec.Func, Node: m.Err.Node, Pid: m.Err.Pid, Message: why, Cause: m.Err.Cause}
	r.resolving, r.dead = false, terr
	a.drainActorCallsLocked(id)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.headCalls.call(ctx, a.head, wire.OpActorDead, encode(func(e *wire.Enc) { e.TaskID(id); e.Str(why) }))
	}()
}

// nodeDiedLocked reacts to another node's death: tasks running there are
// retried (or fail), actors there are dead.
func (a *Agent) nodeDiedLocked(n wire.NodeID) {
	a.logf("node %d died", n)
	if p := a.peers[n]; p != nil {
		delete(a.peers, n)
		if p.conn != nil {
			p.conn.Abort()
		}
	}
	// Actors there first: the calls failed below are sent again to where
	// each actor restarts (or fail if it cannot).
	for id, r := range a.routes {
		if r.resolving || r.node != n || r.dead != nil {
			continue
		}
		if a.ownActors[id] != nil {
			a.actorDownLocked(&wire.ActorDown{Actor: id, Restartable: true,
				Err: &wire.TaskError{Kind: wire.ErrKindActorDied, Task: id, Node: n, Message: fmt.Sprintf("its node %d died", n)}})
		} else {
			delete(a.routes, id) // its owner decides; ask the head again
		}
	}
	for _, ot := range a.owned.All() {
		if ot.scheduled && ot.node == n {
			kind := wire.ErrKindWorkerDied
			if ot.spec.Kind == wire.KindActorCall {
				kind = wire.ErrKindActorDied // retried where the actor restarts, if it has retries
			}
			a.completeLocked(&wire.Done{Task: ot.spec.ID, Attempt: ot.attempt,
				Err: a.taskError(kind, &ot.spec, ot.attempt, "node %d died while running it", n)})
		}
	}
	a.objectsLostLocked(n)
	// Objects owned by the dead node: what waits for them fails (their
	// owner kept their state and count); copies already here stay readable.
	for _, o := range a.objs.All() {
		if o.owned || o.id.Owner() != n || o.state != objPending {
			continue
		}
		o.state, o.err = objFailed, a.objectLost(o.id, fmt.Sprintf("its owner, node %d, died", n))
		a.readyLocked(o)
	}
}

// lineage is how a finished task's results can be made again: its spec,
// its arguments kept alive, and how many of its results still exist.
// Lineage lives while any result does, within the node's lineage budget.
type lineage struct {
	spec    wire.TaskSpec
	live    int    // results not yet freed
	runs    uint32 // attempts so far, rebuilds included
	rebuilt int32  // rebuilds left
	bytes   int
	running bool
	elem    uint64 // order of recording, for eviction
}

// LineageBudget bounds the memory a node spends on lineage; beyond it the
// oldest lineage is dropped and its results can no longer be rebuilt.
const LineageBudget = 64 << 20

// recordLineageLocked keeps lineage for a task whose results went to an
// object store (inline results live with their owner and are lost only
// with it). It reports whether it kept the task's argument pins.
func (a *Agent) recordLineageLocked(ot *ownedTask, results []wire.Value) bool {
	spec := &ot.spec
	if spec.Kind != wire.KindTask {
		return false
	}
	stored := false
	for _, r := range results {
		stored = stored || r.InStore
	}
	if !stored {
		return false
	}
	n := 256 + len(spec.Func) + len(spec.Name)
	for i := range spec.Args {
		n += 32 + len(spec.Args[i].Data)
	}
	live := 0
	for i := uint32(1); i <= spec.NumReturns; i++ {
		if o := a.objs.Get(wire.ObjectID{Task: spec.ID, Index: i}); o != nil && o.owned {
			live++
		}
	}
	if live == 0 {
		return false
	}
	a.lineageSeq++
	l := &lineage{spec: *spec, live: live, runs: ot.attempt + 1, rebuilt: max(spec.MaxRetries, 1), bytes: n, elem: a.lineageSeq}
	if spec.MaxRetries < 0 {
		l.rebuilt = -1
	}
	a.lineage[spec.ID] = l
	a.lineageOrder = append(a.lineageOrder, lineageRef{spec.ID, l.elem})
	a.lineageBytes += n
	for a.lineageBytes > LineageBudget && len(a.lineageOrder) > 0 {
		old := a.lineageOrder[0]
		a.lineageOrder = a.lineageOrder[1:]
		if x := a.lineage[old.id]; x != nil && x.elem == old.elem && !x.running {
			a.dropLineageLocked(old.id, x)
		}
	}
	return true
}

type lineageRef struct {
	id   wire.TaskID
	elem uint64
}

func (a *Agent) dropLineageLocked(id wire.TaskID, l *lineage) {
	delete(a.lineage, id)
	a.lineageBytes -= l.bytes
	for i := range l.spec.Args {
		if l.spec.Args[i].IsRef {
			a.refLocked(l.spec.Args[i].Ref, -1)
		}
	}
}

// resultFreedLocked notes that one result of a task is gone; the last one
// takes the lineage with it.
func (a *Agent) resultFreedLocked(id wire.ObjectID) {
	l := a.lineage[id.Task]
	if l == nil {
		return
	}
	l.live--
	if l.live <= 0 && !l.running {
		a.dropLineageLocked(id.Task, l)
	}
}

// objectsLostLocked handles node n's death for the objects this node owns:
// copies there are gone; an object with no copy left is rebuilt from its
// lineage, or fails with an error naming it and the node.
func (a *Agent) objectsLostLocked(n wire.NodeID) {
	rebuild := map[wire.TaskID]bool{}
	for _, o := range a.objs.All() {
		if !o.owned || o.state != objReady || !o.val.InStore {
			continue
		}
		x := o.x()
		had := len(x.locs)
		x.locs = removeNode(x.locs, n)
		x.subs = removeNode(x.subs, n)
		if len(x.locs) == had {
			continue
		}
		if len(x.locs) > 0 {
			if o.val.Node == n {
				o.val.Node = x.locs[0]
			}
			continue
		}
		l := a.lineage[o.id.Task]
		if o.id.Index > 0 && l != nil && l.rebuilt != 0 {
			o.state, o.val = objPending, wire.Value{Contained: o.val.Contained}
			rebuild[o.id.Task] = true
			continue
		}
		why := fmt.Sprintf("its only copy was on node %d, which died", n)
		switch {
		case o.id.Index == 0:
			why += "; objects made by Put cannot be rebuilt"
		case l == nil:
			why += "; the task that made it can no longer be run again (lineage dropped)"
		default:
			why += "; the task that made it was already rebuilt as often as its retries allow"
		}
		o.state, o.err = objFailed, a.objectLost(o.id, why)
		a.readyLocked(o)
	}
	for id := range rebuild {
		l := a.lineage[id]
		if l.rebuilt > 0 {
			l.rebuilt--
		}
		l.running = true
		a.reconstructions++
		ot := &ownedTask{spec: l.spec, attempt: l.runs, rebuild: true}
		l.runs++
		a.owned.Set(id, ot)
		a.logf("rebuilding the results of task %s (%s): lost with node %d", id, displayName(&l.spec), n)
		a.awaitArgsLocked(ot)
	}
}

// rebuiltLocked records a rebuild's results: lost objects get the new
// copies; copies made for objects that survived are dropped.
func (a *Agent) rebuiltLocked(ot *ownedTask, results []wire.Value) {
	spec := &ot.spec
	if l := a.lineage[spec.ID]; l != nil {
		l.running = false
	}
	for i := uint32(1); i <= spec.NumReturns && int(i) <= len(results); i++ {
		oid := wire.ObjectID{Task: spec.ID, Index: i}
		v := results[i-1]
		o := a.objs.Get(oid)
		if o != nil && o.owned && o.state == objPending {
			v.Contained = o.val.Contained // still pinned from the first run
			o.state, o.val = objReady, v
			if v.InStore {
				o.x().locs = []wire.NodeID{v.Node}
				o.here = v.Node == a.id
			}
			a.readyLocked(o)
			if o.refs <= 0 {
				a.freeLocked(o)
			}
			continue
		}
		// Not needed: let go of the new copy and what it pins.
		if v.InStore {
			if v.Node == a.id {
				a.store.Delete(oid.FileName())
			} else {
				a.sendPeerLocked(v.Node, &wire.Free{IDs: []wire.ObjectID{oid}})
			}
		}
		for _, c := range v.Contained {
			a.rawRefLocked(c, -1)
		}
	}
	if l := a.lineage[spec.ID]; l != nil && l.live <= 0 {
		a.dropLineageLocked(spec.ID, l)
	}
}

func removeNode(ns []wire.NodeID, n wire.NodeID) []wire.NodeID {
	out := ns[:0]
	for _, x := range ns {
		if x != n {
			out = append(out, x)
		}
	}
	return out
}
