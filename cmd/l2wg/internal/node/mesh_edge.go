package node

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
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
// alone on its LAN and forwards after the inhibition (300 ms). A node tells
// the others whether it has mesh adjacencies: while one has, a node without
// any does not forward (a standby whose handshakes are late does not take
// over a LAN it could not carry).

// meshEdgeTick is how often the forwarder's timers are looked at: the
// takeover after the old forwarder's silence is late by at most this.
const meshEdgeTick = 10 * time.Millisecond

type meshEdge struct {
	br    *bridge.Bridge
	tapID bridge.PortID
	meshP bridge.PortID // the mesh port, whose learned addresses a new forwarder forgets
	mp    *bridge.MeshPort
	mesh  *meshDriver // whether this node has adjacencies (Forwarder.SetConnected)
	log   *slog.Logger

	mu    sync.Mutex      // serializes f and stp; protects fwd and state
	f     *mesh.Forwarder // protected by mu
	fwd   bool            // the forwarder's decision last applied; protected by mu
	heard bool            // the end of the inhibition was logged; protected by mu
	// stp is the TAP's virtual-root port towards a host bridge that runs
	// kernel STP (mesh_stp.go); nil unless [stp] tap resolves to stp.
	// Protected by mu.
	stp     *meshSTP
	state   stp.PortState // the state applied to the TAP port; protected by mu
	tapName string
	// nodes heard on the LAN, when last; protected by mu
	lanNodes map[mesh.NodeID]time.Time

	ignored atomic.Uint64 // control frames that are not hellos on the TAP
}

// startMeshEdge puts the TAP port under the appointed-forwarder election
// (and, towards a host bridge that runs kernel STP, the virtual root) and
// starts its routine. Called in mesh mode, before the TAP is read.
//
// [stp] tap in mesh mode: "private" (and "auto" on a host bridge without
// STP) runs the appointed forwarder alone, its hellos to the private group;
// "stp" (and "auto" on a host bridge whose stp_state is not 0) adds the
// virtual root's 802.1D BPDUs; "edge" runs neither: the TAP forwards at
// once and spanning-tree messages from it are dropped and counted by the
// switch.
func (n *Node) startMeshEdge() error {
	mode := spanning.ResolveTAPMode(n.cfg.STP.TAPMode, n.cfg.TAPBridge)
	if mode == spanning.TAPEdge {
		n.br.SetPortState(n.port.id, stp.Forwarding)
		n.log.Info("mesh: TAP is an edge port: no hellos, no BPDUs", "tap_mode", mode)
		return nil
	}
	e := &meshEdge{br: n.br, tapID: n.port.id, meshP: n.mesh.mp.ID(), mp: n.mesh.mp, mesh: n.mesh, log: n.log,
		lanNodes: map[mesh.NodeID]time.Time{}, state: stp.Blocking, tapName: n.tap.Name()}
	e.f = mesh.NewForwarder(mesh.ForwarderConfig{Self: n.mesh.m.ID(), MAC: n.tap.MAC()}, time.Now())
	if mode == spanning.TAPSTP {
		var err error
		e.stp, err = newMeshSTP(n.cfg.STP, n.mesh.m.ID(), n.tap.MAC(), n.port.id,
			func() time.Duration { return n.applied.Load().AgeingTime }, n.log)
		if err != nil {
			return fmt.Errorf("mesh: virtual root: %w", err)
		}
		n.log.Info("mesh: TAP speaks 802.1D as the mesh's virtual root", "tap_mode", mode,
			"port_id", meshEdgePortID(n.mesh.m.ID()).String())
	}
	n.br.SetPortState(e.tapID, stp.Blocking)
	n.br.AddControlAddress(bridge.MAC(mesh.HelloGroup))
	n.br.SetControlHandler(e.handleControl)
	n.edge = e
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		e.routine(n.done)
	}()
	return nil
}

// handleControl takes the switch's control frames: hellos heard on the
// TAP go to the forwarder; anything else (hellos from the mesh side, BPDUs)
// is dropped and counted.
func (e *meshEdge) handleControl(in bridge.PortID, f bridge.Frame) {
	if in == e.tapID && e.stp != nil && bridge.Dst(f.Data) == bridge.MAC(stp.GroupAddress) {
		e.mu.Lock()
		out := e.stp.receiveLocked(e.br, e.tapID, f.Data, time.Now())
		e.applyLocked()
		e.mu.Unlock()
		if len(out) > 0 {
			e.br.Output(e.tapID, out)
		}
		return
	}
	if in != e.tapID || bridge.Dst(f.Data) != bridge.MAC(mesh.HelloGroup) {
		e.ignored.Add(1)
		return
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.f.Receive(f.Data, now); err != nil {
		return // counted by the forwarder
	}
	if h, err := mesh.DecodeHello(f.Data); err == nil && (len(e.lanNodes) < maxLANNodes || e.lanNodes[h.Node] != time.Time{}) {
		e.lanNodes[h.Node] = now
	}
	if bpdus := e.applyLocked(); len(bpdus) > 0 {
		e.br.Output(e.tapID, bpdus) // under mu, as the announcements
	}
}

// maxLANNodes caps the memory of nodes heard on the LAN.
const maxLANNodes = 64

// lanMemory is how long a node heard on the LAN is remembered as one of
// its nodes, for announceLocked.
const lanMemory = time.Hour

// maxAnnounce caps the frames a new forwarder sends at once.
const maxAnnounce = 4096

// announceLocked makes the LAN learn the mesh's addresses through this
// node's TAP, as a migrated VM announces itself (QEMU's RARP
// self-announce), once it forwards: one broadcast RARP frame from each address the switch
// learned behind the mesh, unless it was learned behind a node of this
// LAN (those are the LAN's own hosts, seen through the old forwarder).
// Without it the LAN's bridges keep sending towards the old forwarder the
// frames for remote hosts until each remote host happens to send a
// broadcast (seconds: an ARP refresh). It returns the frames to send.
func (e *meshEdge) announcementsLocked() []bridge.Frame {
	now := time.Now()
	for id, t := range e.lanNodes {
		if now.Sub(t) > lanMemory {
			delete(e.lanNodes, id)
		}
	}
	var frames []bridge.Frame
	for _, fe := range e.br.FDB() {
		if fe.Port != e.meshP || fe.Age > e.br.AgeingTime() || len(frames) == maxAnnounce {
			continue
		}
		if node, ok := e.mp.AddressNode(fe.VID, fe.MAC); ok && e.lanNodes[node] != (time.Time{}) {
			continue
		}
		frames = append(frames, bridge.Frame{Data: rarpAnnounce(fe.VID, fe.MAC)})
	}
	return frames
}

// rarpAnnounce is the frame QEMU sends for a migrated VM: broadcast, from
// mac, RARP (EtherType 0x8035) reverse request with mac as the sender and
// target hardware addresses; tagged with vid unless 0.
func rarpAnnounce(vid uint16, mac bridge.MAC) []byte {
	b := make([]byte, 0, 64)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	b = append(b, mac[:]...)
	if vid != 0 {
		b = append(b, 0x81, 0x00, byte(vid>>8), byte(vid))
	}
	b = append(b, 0x80, 0x35, // RARP
		0, 1, 0x08, 0x00, 6, 4, 0, 3) // Ethernet, IPv4, lengths, reverse request
	b = append(b, mac[:]...)
	b = append(b, 0, 0, 0, 0)
	b = append(b, mac[:]...)
	b = append(b, 0, 0, 0, 0)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
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
			e.mesh.mu.Lock()
			connected := len(e.mesh.up) > 0
			e.mesh.mu.Unlock()
			e.mu.Lock()
			e.f.SetConnected(connected)
			var hello []byte
			if !now.Before(next) {
				next = now.Add(e.f.HelloInterval())
				hello = e.f.Hello(now)
			} else {
				e.f.Tick(now)
			}
			var bpdus []bridge.Frame
			if e.stp != nil {
				var nodes []mesh.NodeID
				if t := e.mp.Table(); t != nil { // nil until the first table
					nodes = t.Nodes()
				}
				bpdus = e.stp.tickLocked(e.br, e.tapID, nodes, now)
			}
			bpdus = append(bpdus, e.applyLocked()...)
			if !e.heard && !e.f.Listening(now) {
				e.heard = true
				e.log.Info("mesh: LAN heard", "forwarding", e.fwd, "lan", e.lanLocked())
			}
			e.mu.Unlock()
			if hello != nil {
				e.br.Output(e.tapID, []bridge.Frame{{Data: hello}})
			}
			if len(bpdus) > 0 {
				e.br.Output(e.tapID, bpdus)
			}
		}
	}
}

// applyLocked sets the TAP port's state: blocked unless the forwarder
// forwards, and then the virtual root's state if there is one. A TAP that
// starts forwarding forgets what its switch learned behind the mesh (the
// LAN's own hosts, seen through the old forwarder) and announces the
// mesh's addresses on the LAN; one that stops forgets what it learned on
// the TAP. The virtual root speaks only while this node is the LAN's
// forwarder, so that on a LAN without STP the two elections never block
// both TAPs. It returns BPDUs to send. Called with mu held.
func (e *meshEdge) applyLocked() []bridge.Frame {
	fwd := e.f.Forwarding()
	var bpdus []bridge.Frame
	if e.stp != nil {
		switch vs := e.stp.vr.State(); {
		case fwd && vs == stp.Disabled:
			bpdus = e.stp.applyLocked(e.br, e.tapID, e.stp.vr.Enable(time.Now()))
		case !fwd && vs != stp.Disabled:
			bpdus = e.stp.applyLocked(e.br, e.tapID, e.stp.vr.Disable(time.Now()))
		}
	}
	state := stp.Blocking
	if fwd {
		state = stp.Forwarding
		if e.stp != nil {
			state = e.stp.vr.State()
		}
	}
	flipped := fwd != e.fwd
	e.fwd = fwd
	lan := e.lanLocked()
	if flipped && !fwd {
		e.log.Info("mesh: no longer the appointed forwarder", "lan", lan)
	}
	if state == e.state {
		if flipped && fwd {
			e.log.Info("mesh: appointed forwarder", "lan", lan, "tap_state", state.String())
		}
		return bpdus
	}
	was := e.state
	e.state = state
	if state == stp.Forwarding {
		frames := e.announcementsLocked()
		e.br.Flush(e.meshP)
		e.br.SetPortState(e.tapID, stp.Forwarding)
		for rest := frames; len(rest) > 0; {
			k := min(len(rest), tapBatch)
			e.br.Output(e.tapID, rest[:k])
			rest = rest[k:]
		}
		if flipped {
			e.log.Info("mesh: appointed forwarder", "lan", lan, "announced", len(frames))
		} else {
			e.log.Info("mesh: TAP forwarding", "announced", len(frames))
		}
		return bpdus
	}
	e.br.SetPortState(e.tapID, state)
	if was.Learns() && !state.Learns() {
		e.br.Flush(e.tapID)
	}
	if flipped && fwd {
		e.log.Info("mesh: appointed forwarder", "lan", lan, "tap_state", state.String())
	}
	return bpdus
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

// stpStatus is the virtual root as show reports a spanning tree; nil
// unless the TAP speaks 802.1D.
func (e *meshEdge) stpStatus() *spanning.Status {
	if e == nil || e.stp == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stp.statusLocked(e.tapName, e.ignored.Load())
	// The port as the switch applies it: blocked while another node is
	// the LAN's forwarder.
	s.Ports[0].State = e.state
	return &s
}

// setSTP applies a reloaded [stp] priority and timers to the virtual root.
func (e *meshEdge) setSTP(c config.STP) error {
	if e == nil || e.stp == nil {
		return nil
	}
	e.mu.Lock()
	out, err := e.stp.setConfigLocked(e.br, e.tapID, c, time.Now())
	out = append(out, e.applyLocked()...)
	e.mu.Unlock()
	if len(out) > 0 {
		e.br.Output(e.tapID, out)
	}
	return err
}

func (e *meshEdge) rootGuardBlocks() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stp.vr.Stats().RootGuardBlocks
}
