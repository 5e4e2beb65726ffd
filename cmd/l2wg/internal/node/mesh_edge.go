package node

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/stp"
)

// The TAP as the mesh's edge: in shortest-path mode several nodes' TAPs may
// share one LAN (two hypervisors of a site whose VM bridges are one
// segment). They elect one appointed forwarder for it (bridge/mesh's
// Forwarder): this node says hello on its TAP every interval, takes the
// hellos it hears there (they are control frames of the switch: never
// learned, never forwarded into the mesh), and keeps the TAP port blocked
// in the switch except while it is the LAN's forwarder. A blocked TAP port
// neither learns nor passes frames either way; the hellos still go out
// (Output ignores the port state) and come in (control frames reach the
// handler in every state). With nothing but VMs behind the TAP the node is
// alone on its LAN and forwards after the inhibition (300 ms).

// meshEdgeTick is how often the forwarder's timers are looked at: the
// takeover after the old forwarder's silence is late by at most this.
const meshEdgeTick = 10 * time.Millisecond

type meshEdge struct {
	br    *bridge.Bridge
	tapID bridge.PortID
	meshP bridge.PortID // the mesh port, whose learned addresses a new forwarder forgets
	log   *slog.Logger

	mu  sync.Mutex      // serializes f; protects fwd
	f   *mesh.Forwarder // protected by mu
	fwd bool            // the state applied to the TAP port; protected by mu

	ignored atomic.Uint64 // control frames that are not hellos on the TAP
}

// startMeshEdge puts the TAP port under the appointed-forwarder election
// and starts its routine. Called in mesh mode, before the TAP is read.
func (n *Node) startMeshEdge() {
	e := &meshEdge{br: n.br, tapID: n.port.id, meshP: n.mesh.mp.ID(), log: n.log}
	e.f = mesh.NewForwarder(mesh.ForwarderConfig{Self: n.mesh.m.ID(), MAC: n.tap.MAC()}, time.Now())
	n.br.SetPortState(e.tapID, stp.Blocking)
	n.br.AddControlAddress(bridge.MAC(mesh.HelloGroup))
	n.br.SetControlHandler(e.handleControl)
	n.edge = e
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		e.routine(n.done)
	}()
}

// handleControl takes the switch's control frames: hellos heard on the
// TAP go to the forwarder; anything else (hellos from the mesh side, BPDUs)
// is dropped and counted.
func (e *meshEdge) handleControl(in bridge.PortID, f bridge.Frame) {
	if in != e.tapID || bridge.Dst(f.Data) != bridge.MAC(mesh.HelloGroup) {
		e.ignored.Add(1)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.f.Receive(f.Data, time.Now()); err != nil {
		return // counted by the forwarder
	}
	e.applyLocked()
}

func (e *meshEdge) routine(done <-chan struct{}) {
	tick := time.NewTicker(meshEdgeTick)
	defer tick.Stop()
	var next time.Time
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			e.mu.Lock()
			var hello []byte
			if !now.Before(next) {
				next = now.Add(e.f.HelloInterval())
				hello = e.f.Hello(now)
			} else {
				e.f.Tick(now)
			}
			e.applyLocked()
			e.mu.Unlock()
			if hello != nil {
				e.br.Output(e.tapID, []bridge.Frame{{Data: hello}})
			}
		}
	}
}

// applyLocked sets the TAP port's state to the forwarder's. A node that
// becomes the forwarder forgets what its switch learned behind the mesh
// (the LAN's own hosts, seen through the old forwarder); one that stops
// forgets what it learned on the TAP. Called with mu held.
func (e *meshEdge) applyLocked() {
	fwd := e.f.Forwarding()
	if fwd == e.fwd {
		return
	}
	e.fwd = fwd
	lan := e.lanLocked()
	if fwd {
		e.br.Flush(e.meshP)
		e.br.SetPortState(e.tapID, stp.Forwarding)
		e.log.Info("mesh: appointed forwarder", "lan", lan)
		return
	}
	e.br.SetPortState(e.tapID, stp.Blocking)
	e.br.Flush(e.tapID)
	e.log.Info("mesh: no longer the appointed forwarder", "lan", lan)
}

// lanLocked is the LAN's nodes for the log: "id" or "id*" for a forwarder.
func (e *meshEdge) lanLocked() []string {
	var out []string
	for _, n := range e.f.LAN() {
		s := n.Node.String()
		if n.Forwarder {
			s += "*"
		}
		out = append(out, s)
	}
	return out
}

// meshEdgeStatus is the LAN as the edge sees it.
type meshEdgeStatus struct {
	Forwarding bool
	LAN        []mesh.LANNode
	Stats      mesh.ForwarderStats
}

func (e *meshEdge) status() meshEdgeStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return meshEdgeStatus{Forwarding: e.f.Forwarding(), LAN: e.f.LAN(), Stats: e.f.Stats()}
}
