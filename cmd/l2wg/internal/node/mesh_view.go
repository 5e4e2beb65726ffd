package node

import (
	"time"

	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

var _ control.MeshViewer = (*Node)(nil)

// MeshView is the mesh for `l2wg show` and the metrics: the machine's view
// with the peers' names, the mesh port's counters and each neighbour's
// smoothed round trip. ok is false unless [mesh] protocol = "shortest-path".
func (n *Node) MeshView() (control.MeshSource, bool) {
	if n == nil || n.mesh == nil {
		return control.MeshSource{}, false
	}
	src := n.mesh.source(time.Now())
	src.View.ComputeUsed() // every node's tree, off the machine's lock
	src.View.Names = map[mesh.NodeID]string{}
	for _, pc := range n.applied.Load().Peers {
		src.View.Names[mesh.IDFromKey(mesh.Key(pc.PublicKey))] = pc.Name
	}
	src.RTT = map[mesh.NodeID]time.Duration{}
	for _, p := range n.tun.Peers() {
		if rtt, _ := p.RTT(); rtt > 0 {
			src.RTT[mesh.IDFromKey(mesh.Key(p.Key()))] = rtt
		}
	}
	src.SPFTime, src.SPFTimed = src.View.Stats.SPFTime, true // the machine's Stopwatch (newMeshDriver)
	if n.edge != nil {
		src.LAN = meshLAN(n.edge.status())
	}
	return src, true
}

// meshLAN is the LAN behind the TAP for show and the metrics: the nodes
// heard on it and which of them forwards.
func meshLAN(st meshEdgeStatus) *control.MeshLAN {
	lan := &control.MeshLAN{Forwarding: st.Forwarding}
	for _, n := range st.LAN {
		lan.Nodes = append(lan.Nodes, n.Node)
		if n.Forwarder && (lan.Forwarder == 0 || n.Node < lan.Forwarder) {
			lan.Forwarder = n.Node
		}
	}
	return lan
}

// source reads the machine (under its lock) and the mesh port.
func (d *meshDriver) source(now time.Time) control.MeshSource {
	d.mu.Lock()
	v := d.m.View(now)
	d.mu.Unlock()
	return control.MeshSource{View: v, Port: d.mp.Stats()}
}
