package bridge

import (
	"sync"
	"sync/atomic"

	"github.com/l2wg/l2wg/bridge/mesh"
)

// MeshPort is how the switch forwards by the mesh protocol (bridge/mesh):
// one bridge port that stands for the whole mesh. In mesh mode the tunnels
// to the peers are not bridge ports but the MeshPort's links; the switch
// stays the one switch of the node, and sees its TAP (and any other edge
// port) and the MeshPort.
//
//   - A frame the switch sends to the MeshPort (flooded, or unicast to an
//     address learned on it) gets a mesh header: unicast towards the node
//     that the destination address was learned behind (the egress node),
//     on the next hop of this node's table; otherwise (broadcast, multicast,
//     an address not learned) multi-destination, on this node's
//     shortest-path tree.
//   - A frame from a link (InputFromLink) is checked and forwarded by its
//     header without a look at its addresses: a unicast for another node
//     goes to the next hop towards it; a multi-destination frame is accepted
//     only from this node's next hop towards its ingress node (the
//     reverse-path check) and goes on to the neighbours below this node on
//     the ingress node's tree. The hop limit drops what a transient loop
//     would circulate. Frames for this node lose their header, their source
//     address is learned behind their ingress node, and they enter the
//     switch on the MeshPort, which delivers them to the edge ports.
//   - SetTable installs a new forwarding table (mesh.Action TablesChanged)
//     and forgets the addresses learned behind nodes it no longer reaches.
//
// Its data path reads the table through an atomic pointer and takes no lock
// but the address table's read lock; it allocates nothing per frame in a
// steady state (the header is written into a pooled buffer).
type MeshPort struct {
	b    *Bridge
	self mesh.NodeID
	id   atomic.Uint32 // this port's PortID, set by Attach

	table atomic.Pointer[mesh.Table]
	links atomic.Pointer[meshLinks] // replaced under linksMu
	// serializes AddLink and RemoveLink
	linksMu sync.Mutex

	addrs   meshFDB
	stats   meshCounters
	control atomic.Pointer[func(from mesh.Port, msg []byte)]
}

// meshLinks is an immutable array of links indexed by mesh.Port.
type meshLinks struct{ devs []Port }

func (l *meshLinks) get(p mesh.Port) Port {
	if int(p) < len(l.devs) {
		return l.devs[p]
	}
	return nil
}

// AttachMesh adds the mesh port of a node whose mesh ID is self to b and
// returns it. Until SetTable it drops what it is handed (NoTable).
func (b *Bridge) AttachMesh(self mesh.NodeID) *MeshPort {
	mp := &MeshPort{b: b, self: self}
	mp.links.Store(&meshLinks{})
	mp.addrs.init(b.fdb.limit)
	mp.id.Store(uint32(b.AddPort("mesh", mp)))
	return mp
}

// ID returns the bridge port ID of the mesh port.
func (mp *MeshPort) ID() PortID { return PortID(mp.id.Load()) }

// AddLink registers the tunnel to a neighbour as link p (the mesh.Port the
// machine is told about in AdjacencyUp). dev.WriteFrames gets frames with
// the mesh header in front; it must not retain them.
func (mp *MeshPort) AddLink(p mesh.Port, dev Port) {
	mp.linksMu.Lock()
	defer mp.linksMu.Unlock()
	old := mp.links.Load().devs
	devs := make([]Port, max(len(old), int(p)+1))
	copy(devs, old)
	devs[p] = dev
	mp.links.Store(&meshLinks{devs: devs})
}

// RemoveLink forgets link p.
func (mp *MeshPort) RemoveLink(p mesh.Port) {
	mp.linksMu.Lock()
	defer mp.linksMu.Unlock()
	old := mp.links.Load().devs
	if int(p) >= len(old) {
		return
	}
	devs := make([]Port, len(old))
	copy(devs, old)
	devs[p] = nil
	mp.links.Store(&meshLinks{devs: devs})
}

// SetTable installs t (from a mesh TablesChanged action) and flushes the
// addresses learned behind nodes that t does not reach.
func (mp *MeshPort) SetTable(t *mesh.Table) {
	mp.table.Store(t)
	if n := mp.addrs.flushUnreachable(t); n > 0 {
		mp.b.log.Info("mesh: addresses flushed", "entries", n)
	}
}

// Table returns the table in use; nil before the first SetTable.
func (mp *MeshPort) Table() *mesh.Table { return mp.table.Load() }

// AddressNode returns the node that address m of VLAN vid (0: untagged)
// was learned behind.
func (mp *MeshPort) AddressNode(vid uint16, m MAC) (mesh.NodeID, bool) {
	return mp.addrs.lookup(keyOf(vid, m), mp.b.now(), mp.b.fdb.ageing.Load())
}

// SetControlHandler sets the function that gets the control messages (for
// mesh.Machine.Receive) that come in on links. It runs on the goroutine that
// called InputFromLink and must not retain msg.
func (mp *MeshPort) SetControlHandler(h func(from mesh.Port, msg []byte)) {
	mp.control.Store(&h)
}

// SendControl sends a control message (a mesh.Action Send) to the
// neighbour on link p, behind a control header, through the link's
// fragmentation like any frame.
func (mp *MeshPort) SendControl(p mesh.Port, msg []byte) {
	dev := mp.links.Load().get(p)
	if dev == nil {
		return
	}
	b := make([]byte, mesh.HeaderLen+len(msg))
	h := mesh.Header{Control: true, HopLimit: 1, Ingress: mp.self}
	h.Put(b)
	copy(b[mesh.HeaderLen:], msg)
	dev.WriteFrames([]Frame{{Data: b}})
	mp.stats.add(&mp.stats.controlOut, 1)
}

// WriteFrames is the switch handing frames to the mesh: they go out with a
// header (see MeshPort). It implements Port.
func (mp *MeshPort) WriteFrames(frames []Frame) {
	t := mp.table.Load()
	if t == nil {
		mp.stats.add(&mp.stats.noTable, len(frames))
		return
	}
	links := mp.links.Load()
	ob := getMeshOut()
	defer putMeshOut(ob)
	now, ageing := mp.b.now(), mp.b.fdb.ageing.Load()
	for i := range frames {
		fr := &frames[i]
		h := mesh.Header{Ingress: mp.self}
		var one mesh.Port
		eth := Ethernet(fr.Data)
		vid, okVLAN := eth.VLAN()
		if egress, ok := mp.addrs.lookup(eth.dstKey(vid), now, ageing); ok && okVLAN && !eth.Dst().IsMulticast() {
			if p, limit, ok := t.NextHop(egress); ok {
				h.Egress, h.HopLimit, one = egress, limit, p
			}
		}
		if one == 0 {
			h.Multi, h.HopLimit = true, t.MultiHopLimit()
		}
		data := ob.frame(&h, fr.Data)
		if one != 0 {
			ob.queue(one, Frame{Offload: fr.Offload, Data: data})
			continue
		}
		for _, p := range t.MultiTargets(mp.self) {
			ob.queue(p, Frame{Offload: fr.Offload, Data: data})
		}
	}
	ob.send(links, &mp.stats)
}

// InputFromLink handles frames (mesh header in front) that came in on link
// from. It may rewrite the frames' headers in place (the hop limit) and
// hands them on to other links and the switch before it returns; the caller
// owns them again afterwards.
func (mp *MeshPort) InputFromLink(from mesh.Port, frames []Frame) {
	t := mp.table.Load()
	if t == nil {
		t = mesh.EmptyTable(mp.self) // control messages still count
	}
	links := mp.links.Load()
	ob := getMeshOut()
	defer putMeshOut(ob)
	now := mp.b.now()
	for i := range frames {
		fr := &frames[i]
		h, err := mesh.DecodeHeader(fr.Data)
		if err == nil && h.Control {
			mp.stats.add(&mp.stats.controlIn, 1)
			if c := mp.control.Load(); c != nil {
				(*c)(from, fr.Data[mesh.HeaderLen:])
			}
			continue
		}
		if err != nil || len(fr.Data) < mesh.HeaderLen+EthernetHeaderLen {
			mp.stats.add(&mp.stats.malformed, 1)
			continue
		}
		if h.HopLimit == 0 {
			mp.stats.add(&mp.stats.hopLimit, 1)
			continue
		}
		inner := Frame{Offload: fr.Offload, Data: fr.Data[mesh.HeaderLen:]}
		if !h.Multi {
			if h.Egress == mp.self {
				mp.learn(inner.Data, h.Ingress, now)
				ob.local = append(ob.local, inner)
				continue
			}
			p, _, ok := t.NextHop(h.Egress)
			switch {
			case !ok:
				mp.stats.add(&mp.stats.noRoute, 1)
			case p == from:
				mp.stats.add(&mp.stats.reversePath, 1) // would bounce back
			case h.HopLimit == 1:
				mp.stats.add(&mp.stats.hopLimit, 1)
			default:
				fr.Data[1] = h.HopLimit - 1
				ob.queue(p, *fr)
				mp.stats.add(&mp.stats.transit, 1)
			}
			continue
		}
		if !t.AcceptMulti(h.Ingress, from) {
			mp.stats.add(&mp.stats.reversePath, 1)
			continue
		}
		mp.learn(inner.Data, h.Ingress, now)
		ob.local = append(ob.local, inner)
		targets := t.MultiTargets(h.Ingress)
		if len(targets) == 0 {
			continue
		}
		if h.HopLimit == 1 {
			mp.stats.add(&mp.stats.hopLimit, 1)
			continue
		}
		fr.Data[1] = h.HopLimit - 1
		for _, p := range targets {
			if p != from {
				ob.queue(p, *fr)
			}
		}
	}
	ob.send(links, &mp.stats)
	if len(ob.local) > 0 {
		mp.b.Input(mp.ID(), ob.local)
	}
}

// learn records that the source of frame was seen behind node ingress.
func (mp *MeshPort) learn(frame []byte, ingress mesh.NodeID, now int64) {
	eth := Ethernet(frame)
	src := eth.Src()
	vid, ok := eth.VLAN()
	if src.IsMulticast() || src.IsZero() || !ok {
		return // the switch drops and counts it
	}
	mp.addrs.learn(eth.srcKey(vid), ingress, now)
}
