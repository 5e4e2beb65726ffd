package bridge

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/frag"
)

// The mesh's data header goes in front of frames up to the longest a TAP
// gives (frag.MaxEthernetLen): the tunnel must carry the sum, or the
// longest superframes would be dropped as too big (this does not compile
// if the header outgrows frag's room for it).
const _ = uint(frag.MaxEncapLen - mesh.HeaderLen)

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
// steady state (the header is written into a pooled buffer and handed to
// the link beside the frame, as Frame.Head, not copied in front of it).
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

// meshLinks is an immutable array of links indexed by mesh.Port, replaced
// as a whole under linksMu; the links themselves stay.
type meshLinks struct {
	links    []*meshLink
	filtered bool // some link has a VLAN filter
}

// meshLink is one tunnel to a neighbour.
type meshLink struct {
	dev   Port
	name  string
	vlans atomic.Pointer[vlanFilter] // what the link carries; nil: everything
	// the spanning-tree protocol heard from the peer (mismatch.go); nil: none
	mismatch atomic.Pointer[string]
	noticed  atomic.Int64 // bridge time the last mismatch notice went out
}

func (l *meshLinks) get(p mesh.Port) *meshLink {
	if int(p) < len(l.links) {
		return l.links[p]
	}
	return nil
}

// carries reports whether link p carries VLAN vid; a missing link does
// (the frame is then dropped as no-route).
func (l *meshLinks) carries(p mesh.Port, vid uint16) bool {
	lk := l.get(p)
	return lk == nil || lk.vlans.Load().carries(vid)
}

// AttachMesh adds the mesh port of a node whose mesh ID is self to b and
// returns it. Until SetTable it drops what it is handed (NoTable).
func (b *Bridge) AttachMesh(self mesh.NodeID) *MeshPort {
	mp := &MeshPort{b: b, self: self}
	mp.links.Store(&meshLinks{})
	mp.addrs.init(b.fdb.limit)
	mp.id.Store(uint32(b.AddPort("mesh", mp)))
	b.mesh.Store(mp)
	return mp
}

// ID returns the bridge port ID of the mesh port.
func (mp *MeshPort) ID() PortID { return PortID(mp.id.Load()) }

// AddLink registers the tunnel to a neighbour as link p (the mesh.Port the
// machine is told about in AdjacencyUp), named name in logs.
// dev.WriteFrames gets frames with the mesh header in front: in Head for
// the frames of this node's switch (the frame is not copied), in Data for
// transit frames; it must not retain them. The link carries every VLAN until SetVLANFilter.
func (mp *MeshPort) AddLink(p mesh.Port, name string, dev Port) {
	mp.replaceLinks(func(links []*meshLink) []*meshLink {
		if int(p) >= len(links) {
			links = append(links, make([]*meshLink, int(p)+1-len(links))...)
		}
		links[p] = &meshLink{dev: dev, name: name}
		return links
	})
}

// RemoveLink forgets link p.
func (mp *MeshPort) RemoveLink(p mesh.Port) {
	mp.replaceLinks(func(links []*meshLink) []*meshLink {
		if int(p) < len(links) {
			links[p] = nil
		}
		return links
	})
}

// replaceLinks replaces the links table by edit's change of a copy.
func (mp *MeshPort) replaceLinks(edit func([]*meshLink) []*meshLink) {
	mp.linksMu.Lock()
	defer mp.linksMu.Unlock()
	links := edit(slices.Clone(mp.links.Load().links))
	t := &meshLinks{links: links}
	for _, lk := range links {
		if lk != nil && lk.vlans.Load() != nil {
			t.filtered = true
		}
	}
	mp.links.Store(t)
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
// neighbour on link p, as a control frame (mesh.PutControlHeader), through
// the link's fragmentation like any frame.
func (mp *MeshPort) SendControl(p mesh.Port, msg []byte) {
	lk := mp.links.Load().get(p)
	if lk == nil {
		return
	}
	b := make([]byte, mesh.ControlHeaderLen+len(msg))
	mesh.PutControlHeader(b, mp.self, mesh.ControlMessage)
	copy(b[mesh.ControlHeaderLen:], msg)
	lk.dev.WriteFrames([]Frame{{Data: b}})
	mp.stats.add(&mp.stats.controlOut, 1)
}

// WriteFrames is the switch handing frames to the mesh: they go out with a
// header (see MeshPort). It implements Port. A link with a VLAN filter gets
// only the frames of the VLANs it carries: a unicast frame whose next hop
// does not carry its VLAN is dropped (DropVLANFiltered), a
// multi-destination frame skips that link.
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
	ob.reserveHeads(len(frames))
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
		if one != 0 && links.filtered && !links.carries(one, vid) {
			ob.vlanDropped++
			continue
		}
		if one == 0 {
			h.Multi, h.HopLimit = true, t.MultiHopLimit()
		}
		out := Frame{Offload: fr.Offload, Data: fr.Data, Head: ob.head(&h)}
		if one != 0 {
			ob.queue(one, out)
			continue
		}
		for _, p := range t.MultiTargets(mp.self) {
			if links.filtered && !links.carries(p, vid) {
				ob.vlanSkipped++
				continue
			}
			ob.queue(p, out)
		}
	}
	ob.send(links)
	mp.count(ob)
}

// InputFromLink handles frames (mesh header in front) that came in on link
// from. It may rewrite the frames' headers in place (the hop limit) and
// hands them on to other links and the switch before it returns; the caller
// owns them again afterwards.
//
// A frame that starts with mesh.FirstByte is a control frame or a BPDU
// (mismatch.go); the rest are data. A link with a VLAN filter carries only
// its VLANs, in and out, transit included: a frame of another VLAN that
// comes in on it, or whose next hop it is, is dropped (DropVLANFiltered).
func (mp *MeshPort) InputFromLink(from mesh.Port, frames []Frame) {
	t := mp.table.Load()
	if t == nil {
		t = mesh.EmptyTable(mp.self) // control messages still count
	}
	links := mp.links.Load()
	lk := links.get(from)
	var inVLANs *vlanFilter
	mismatched := false
	if lk != nil {
		inVLANs, mismatched = lk.vlans.Load(), lk.mismatch.Load() != nil
	}
	ob := getMeshOut()
	defer putMeshOut(ob)
	now := mp.b.now()
	for i := range frames {
		fr := &frames[i]
		if len(fr.Data) > 0 && fr.Data[0] == mesh.FirstByte {
			mp.inputControl(lk, from, fr.Data, now, ob)
			continue
		}
		if mismatched {
			ob.mismatch++
			continue
		}
		h, err := mesh.DecodeHeader(fr.Data)
		if err != nil || len(fr.Data) < mesh.HeaderLen+EthernetHeaderLen {
			mp.stats.add(&mp.stats.malformed, 1)
			continue
		}
		if h.HopLimit == 0 {
			// Exhausted: a neighbour that follows the protocol never
			// sends one. Never delivered, to the TAP or anywhere.
			mp.stats.add(&mp.stats.hopLimitZero, 1)
			continue
		}
		inner := Frame{Offload: fr.Offload, Data: fr.Data[mesh.HeaderLen:]}
		var vid uint16
		if links.filtered {
			var ok bool
			if vid, ok = Ethernet(inner.Data).VLAN(); !ok || !inVLANs.carries(vid) {
				ob.vlanDropped++
				continue
			}
		}
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
			case links.filtered && !links.carries(p, vid):
				ob.vlanDropped++
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
			switch {
			case p == from:
			case links.filtered && !links.carries(p, vid):
				ob.vlanSkipped++
			default:
				ob.queue(p, *fr)
			}
		}
	}
	ob.send(links)
	mp.count(ob)
	if len(ob.local) > 0 {
		mp.b.Input(mp.ID(), ob.local)
	}
}

// count adds what one call counted in ob to the mesh port's counters and
// the switch's drops.
func (mp *MeshPort) count(ob *meshOut) {
	c := &mp.stats
	if ob.sent > 0 {
		c.sent.Add(ob.sent)
	}
	if ob.noRoute > 0 {
		c.noRoute.Add(ob.noRoute)
	}
	if ob.vlanDropped+ob.vlanSkipped > 0 {
		c.vlanFiltered.Add(ob.vlanDropped + ob.vlanSkipped)
		if ob.vlanDropped > 0 {
			mp.b.drops[DropVLANFiltered].Add(ob.vlanDropped)
		}
	}
	if ob.mismatch > 0 {
		c.protocolMismatch.Add(ob.mismatch)
		mp.b.drops[DropProtocolMismatch].Add(ob.mismatch)
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
