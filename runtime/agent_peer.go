package runtime

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/runtime/wire"
)

func containsNode(ns []wire.NodeID, n wire.NodeID) bool {
	for _, x := range ns {
		if x == n {
			return true
		}
	}
	return false
}

// peer is this agent's connection to another node's agent. Messages to a
// node go on the connection this agent dialed; the other node's messages
// arrive on the one it dialed, so each direction keeps its order.
type peer struct {
	id      wire.NodeID
	conn    *wire.Conn
	backlog []wire.Msg
	calls   calls
	ready   chan struct{}
	err     error
}

// sendPeerLocked queues m for node n, dialing it if needed.
func (a *Agent) sendPeerLocked(n wire.NodeID, m wire.Msg) {
	if n == a.id {
		a.logf("bug: %s message addressed to this node", m.Type())
		return
	}
	p := a.peerLocked(n)
	if p.conn != nil {
		p.conn.Send(m)
		return
	}
	if p.err == nil {
		p.backlog = append(p.backlog, m)
	}
}

func (a *Agent) peerLocked(n wire.NodeID) *peer {
	p := a.peers[n]
	if p != nil {
		return p
	}
	p = &peer{id: n, ready: make(chan struct{})}
	a.peers[n] = p
	addr := a.view[n].Addr
	go a.dialPeer(p, addr)
	return p
}

func (a *Agent) dialPeer(p *peer, addr string) {
	var conn *wire.Conn
	var err error
	if addr == "" {
		err = fmt.Errorf("node %d is not in the cluster view", p.id)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), wire.HandshakeTimeout*2)
		conn, err = dial(ctx, addr, a.cfg.Secret, wire.RoleNode)
		cancel()
		if err == nil {
			err = conn.Send(&wire.Hello{Role: wire.RoleNode, Worker: uint32(a.id)})
		}
	}
	a.mu.Lock()
	if err != nil || a.stopped {
		if err == nil {
			err = fmt.Errorf("node %d stopping", a.id)
			conn.Abort()
		}
		p.err = fmt.Errorf("node %d: connect to node %d: %w", a.id, p.id, err)
		p.backlog = nil
		if a.peers[p.id] == p {
			delete(a.peers, p.id)
		}
		a.mu.Unlock()
		close(p.ready)
		a.logf("%v", p.err)
		return
	}
	p.conn = conn
	for _, m := range p.backlog {
		conn.Send(m)
	}
	p.backlog = nil
	a.mu.Unlock()
	close(p.ready)
	a.readPeer(conn, p.id, p)
}

// peerCall makes a request of node n and waits for the answer.
func (a *Agent) peerCall(ctx context.Context, n wire.NodeID, op wire.Op, body []byte) ([]byte, error) {
	a.mu.Lock()
	p := a.peerLocked(n)
	a.mu.Unlock()
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return nil, p.err
	}
	return p.calls.call(ctx, p.conn, op, body)
}

// servePeer serves a connection another node's agent dialed to us.
func (a *Agent) servePeer(conn *wire.Conn, from wire.NodeID) {
	a.readPeer(conn, from, nil)
}

// readPeer handles messages from node `from` until the connection ends.
// p is set for connections this agent dialed (their replies arrive here).
func (a *Agent) readPeer(conn *wire.Conn, from wire.NodeID, p *peer) {
	defer func() {
		conn.Close()
		if p != nil {
			p.calls.fail(fmt.Errorf("connection to node %d closed", from))
			a.mu.Lock()
			if a.peers[from] == p {
				delete(a.peers, from)
			}
			a.mu.Unlock()
		}
	}()
	for {
		m, err := conn.Recv()
		if err != nil {
			if !isClosed(err) {
				a.logf("node %d: %v", from, err)
			}
			return
		}
		switch m := m.(type) {
		case *wire.Rep:
			if p != nil {
				p.calls.deliver(m)
			}
		case *wire.Req:
			go func() {
				var body []byte
				var err error
				if m.Op == wire.OpPull {
					body, err = a.servePull(m.Body)
				} else {
					err = fmt.Errorf("%w: op %d between nodes", ErrInvalid, m.Op)
				}
				reply(conn, m.ID, body, err)
			}()
		default:
			a.mu.Lock()
			a.peerMsgLocked(from, m)
			a.mu.Unlock()
		}
	}
}

func (a *Agent) peerMsgLocked(from wire.NodeID, m wire.Msg) {
	switch m := m.(type) {
	case *wire.Forward:
		a.admitLocked(newExecTask(&m.Spec, m.Attempt))
	case *wire.Done:
		a.completeLocked(m)
	case *wire.Subscribe:
		for _, id := range m.IDs {
			if o := a.objs.Get(id); o != nil && o.owned && !containsNode(o.subs(), from) {
				x := o.x()
				x.subs = append(x.subs, from)
			}
			a.whenReadyLocked(id, func(o *obj) {
				r := &wire.Object{ID: id, Value: o.val, Err: o.err}
				a.sendPeerLocked(from, r)
			})
		}
	case *wire.Object:
		a.objectFromPeerLocked(m)
	case *wire.Refs:
		for i, id := range m.IDs {
			a.refLocked(id, m.Deltas[i])
		}
	case *wire.Free:
		a.freeCopiesLocked(m.IDs)
	case *wire.Put:
		// A node now holds a copy of an object we own.
		if o := a.objs.Get(m.ID); o != nil && o.owned {
			x := o.x()
			x.locs = append(x.locs, m.Value.Node)
		} else {
			a.sendPeerLocked(from, &wire.Free{IDs: []wire.ObjectID{m.ID}})
		}
	case *wire.Cancel:
		a.cancelExecLocked(m.Task, m.Force)
	case *wire.KillActor:
		a.killLocalActorLocked(m.Actor, "killed by its caller")
	case *wire.ActorDown:
		a.actorDownLocked(m)
	case *wire.Shutdown:
		// The other node is stopping; its connection ends next.
	default:
		a.logf("node %d sent unexpected %s message", from, m.Type())
	}
}
