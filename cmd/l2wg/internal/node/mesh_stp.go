package node

import (
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
	"github.com/l2wg/l2wg/stp"
)

// The mesh towards a host bridge that runs kernel STP ([stp] tap = "stp",
// or "auto" on a host bridge whose stp_state is not 0): the whole mesh
// shows itself on every TAP as one 802.1D root bridge, as an MSTP region
// shows itself as one bridge (stp.VirtualRoot). Every node announces on
// its TAP the same root, which is also the designated bridge, at root path
// cost 0, with a port ID of its own; kernel bridges joined by a LAN that
// reach the mesh through two TAPs see two ports of one root and block the
// redundant path themselves. A bridge behind a TAP that claims a better
// root trips root guard: that TAP blocks (logged, counted) while the claim
// lasts. The appointed-forwarder election of the shared LAN runs as well
// (its hellos are data to a kernel bridge, and a blocked kernel port drops
// them); the TAP forwards while both allow it.
//
// The root's bridge ID is [stp] priority (the same on every node, or the
// nodes disagree and root guard blocks the TAPs that see a better root)
// and an address made of a node ID: 02:6c and the 32 bits of the lowest
// node ID in the mesh's graph (two-way checked, so a forged record cannot
// name it). A lower node that joins is the root at once: kernel bridges
// take a better root at the next BPDU without a port changing state. When
// the root's node leaves the graph, the root stays for meshRootHold: a
// restarted or briefly cut-off node changes nothing on the kernel side
// (which ignores worse information until it ages out anyway); only a node
// gone for longer hands the root to the next lowest. A mesh split in two
// shows the same root on both sides for that time, then two roots; a
// kernel bridge that sees both blocks the TAP of the worse one through root
// guard. Ports: priority 128 and the node ID modulo 4095, plus 1: stable
// for a node's life; two nodes whose numbers collide on one segment are
// told apart by the appointed forwarder (LANs without STP) or by the
// kernel bridge's own port IDs (it breaks the tie).

// meshRootHold is how long the root stays named for a node that left the
// graph.
const meshRootHold = 60 * time.Second

// meshRootChoice picks the node the virtual root is named for.
type meshRootChoice struct {
	node mesh.NodeID
	set  bool
	gone time.Time // when node was first missing from the graph; zero while there
}

// update takes the graph's nodes (ascending; empty before the node has
// computed) and returns the root's node and whether it changed.
func (c *meshRootChoice) update(nodes []mesh.NodeID, self mesh.NodeID, now time.Time) (mesh.NodeID, bool) {
	lowest := self
	if len(nodes) > 0 {
		lowest = min(nodes[0], self)
	}
	_, present := slices.BinarySearch(nodes, c.node)
	switch {
	case !c.set:
		c.node, c.set, c.gone = lowest, true, time.Time{}
		return lowest, true
	case lowest < c.node:
		c.node, c.gone = lowest, time.Time{}
		return lowest, true
	case present || c.node == self:
		c.gone = time.Time{}
	case c.gone.IsZero():
		c.gone = now
	case now.Sub(c.gone) >= meshRootHold:
		c.node, c.gone = lowest, time.Time{}
		return lowest, true
	}
	return c.node, false
}

// meshRootID is the virtual root's bridge ID for node id.
func meshRootID(priority uint16, id mesh.NodeID) stp.BridgeID {
	return stp.NewBridgeID(priority, [6]byte{0x02, 0x6c, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)})
}

// meshEdgePortID is node id's port ID on its TAP.
func meshEdgePortID(id mesh.NodeID) stp.PortID {
	return stp.NewPortID(stp.DefaultPortPriority, stp.PortNo(1+uint32(id)%uint32(stp.MaxPortNo)))
}

// meshSTP is the TAP's virtual-root port. Its methods are called with the
// edge's mu held.
type meshSTP struct {
	vr       *stp.VirtualRoot
	self     mesh.NodeID
	priority uint16
	choice   meshRootChoice
	mac      [6]byte // the TAP's: the source of BPDUs
	no       stp.PortNo
	ageing   func() time.Duration // the configured FDB ageing
	log      *slog.Logger

	blocked string // "root guard", "backup" or "": the last logged

	bad atomic.Uint64 // BPDUs that do not decode
}

func newMeshSTP(s config.STP, self mesh.NodeID, mac [6]byte, tap bridge.PortID, ageing func() time.Duration, log *slog.Logger) (*meshSTP, error) {
	m := &meshSTP{self: self, priority: s.Priority, mac: mac, no: stp.PortNo(tap), ageing: ageing, log: log}
	vr, err := stp.NewVirtualRoot(stp.VirtualRootConfig{
		Root: meshRootID(s.Priority, self), Port: meshEdgePortID(self), PortNo: m.no,
		HelloTime: s.HelloTime, MaxAge: s.MaxAge, ForwardDelay: s.ForwardDelay,
	})
	if err != nil {
		return nil, err
	}
	m.vr = vr
	return m, nil
}

// frames are what the virtual root's actions ask of the switch; BPDUs to
// send come back for the caller to send.
func (m *meshSTP) applyLocked(br *bridge.Bridge, tap bridge.PortID, acts []stp.Action) []bridge.Frame {
	var out []bridge.Frame
	for _, a := range acts {
		switch a.Kind {
		case stp.SendBPDU:
			f, err := stp.AppendFrameTo(make([]byte, 0, 64), stp.GroupAddress, m.mac, a.BPDU)
			if err != nil {
				m.log.Warn("encode bpdu", "err", err)
				continue
			}
			out = append(out, bridge.Frame{Data: f})
		case stp.FlushFDB:
			br.Flush(tap)
		case stp.SetAgeing:
			br.SetAgeingTime(a.Ageing)
		case stp.RestoreAgeing:
			br.SetAgeingTime(m.ageing())
		}
		// SetState: the edge reads vr.State() and combines it with the
		// appointed forwarder's decision.
	}
	m.logBlockLocked()
	return out
}

// logBlockLocked logs the start and end of a block by root guard or by
// another edge port of the mesh on the TAP's segment.
func (m *meshSTP) logBlockLocked() {
	now := ""
	st := m.vr.Status().Ports[0]
	switch {
	case m.vr.RootInconsistent():
		now = "root guard"
	case m.vr.Backup():
		now = "backup"
	}
	if now == m.blocked {
		return
	}
	switch now {
	case "root guard":
		m.log.Warn("mesh: TAP blocked by root guard: a bridge behind it claims a better root than the mesh's",
			"claimed_root", st.DesignatedRoot.String(), "bridge", st.DesignatedBridge.String(), "mesh_root", m.vr.Root().String())
	case "backup":
		m.log.Info("mesh: TAP blocked: another node's TAP is designated on its segment",
			"port", st.DesignatedPort.String(), "own_port", st.ID.String())
	default:
		m.log.Info("mesh: TAP no longer blocked by the tree", "was", m.blocked)
	}
	m.blocked = now
}

// tickLocked follows the graph's lowest node and fires the timers.
func (m *meshSTP) tickLocked(br *bridge.Bridge, tap bridge.PortID, nodes []mesh.NodeID, now time.Time) []bridge.Frame {
	node, _ := m.choice.update(nodes, m.self, now)
	if root := meshRootID(m.priority, node); root != m.vr.Root() {
		m.log.Info("mesh: virtual root", "root", root.String(), "node", node.String())
		return m.applyLocked(br, tap, m.vr.SetRoot(root, now))
	}
	return m.applyLocked(br, tap, m.vr.Tick(now))
}

// receiveLocked takes a BPDU frame heard on the TAP.
func (m *meshSTP) receiveLocked(br *bridge.Bridge, tap bridge.PortID, frame []byte, now time.Time) []bridge.Frame {
	b, err := stp.DecodeFrame(frame)
	if err != nil {
		m.bad.Add(1)
		return nil
	}
	return m.applyLocked(br, tap, m.vr.Receive(b, now))
}

// setConfigLocked applies a reloaded [stp] priority and timers.
func (m *meshSTP) setConfigLocked(br *bridge.Bridge, tap bridge.PortID, s config.STP, now time.Time) ([]bridge.Frame, error) {
	acts, err := m.vr.SetTimers(s.HelloTime, s.MaxAge, s.ForwardDelay, now)
	if err != nil {
		return nil, err
	}
	out := m.applyLocked(br, tap, acts)
	m.priority = s.Priority
	if root := meshRootID(m.priority, m.choice.node); root != m.vr.Root() {
		m.log.Info("mesh: virtual root", "root", root.String(), "node", m.choice.node.String())
		out = append(out, m.applyLocked(br, tap, m.vr.SetRoot(root, now))...)
	}
	return out, nil
}

// statusLocked is the virtual root as show reports a spanning tree.
func (m *meshSTP) statusLocked(tapName string, ignored uint64) spanning.Status {
	return spanning.Status{Status: m.vr.Status(), Names: map[stp.PortNo]string{m.no: tapName},
		TAPMode: spanning.TAPSTP, Ignored: ignored, Malformed: m.bad.Load()}
}

// meshSTPStatus is the mesh's virtual root on the TAP for show and the
// metrics, as a spanning tree of one port; nil unless the TAP speaks
// 802.1D.
func (n *Node) meshSTPStatus() *control.STP {
	s := n.edge.stpStatus()
	if s == nil {
		return nil
	}
	st := stpJSON(*s)
	st.Ports[0].RootGuardBlocks = n.edge.rootGuardBlocks()
	return st
}
