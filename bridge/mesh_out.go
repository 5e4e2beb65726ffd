package bridge

import (
	"sync"
	"sync/atomic"

	"github.com/l2wg/l2wg/bridge/mesh"
)

// meshOut is the scratch of one MeshPort call: frames per link and the
// headers the frames carry in front (Frame.Head), reused through a
// pool so that a steady state allocates nothing.
type meshOut struct {
	perLink [][]Frame   // indexed by mesh.Port
	touched []mesh.Port // links with frames in perLink
	local   []Frame     // frames for this node's switch
	heads   []byte      // the headers written in this call, HeaderLen each
	used    int         // headers in heads

	// counted by the call, added to the counters once (MeshPort.count)
	sent, noRoute            uint64
	vlanDropped, vlanSkipped uint64 // frames dropped, copies not sent
	mismatch                 uint64 // frames from or for a link whose peer speaks another protocol
}

var meshOutPool = sync.Pool{New: func() any { return new(meshOut) }}

func getMeshOut() *meshOut { return meshOutPool.Get().(*meshOut) }

func putMeshOut(ob *meshOut) {
	for _, p := range ob.touched {
		ob.perLink[p] = clearFrames(ob.perLink[p])
	}
	ob.touched = ob.touched[:0]
	ob.local = clearFrames(ob.local)
	ob.used = 0
	ob.sent, ob.noRoute, ob.vlanDropped, ob.vlanSkipped, ob.mismatch = 0, 0, 0, 0, 0
	meshOutPool.Put(ob)
}

// reserveHeads makes room in heads for the headers of n frames, before the
// first head of a call (so the heads handed out stay where they are).
func (ob *meshOut) reserveHeads(n int) {
	if need := n * mesh.HeaderLen; cap(ob.heads) < need {
		ob.heads = make([]byte, need)
	}
	ob.heads = ob.heads[:cap(ob.heads)]
}

// head returns h encoded in the next of the reserved headers, for a Frame's
// Head: the frame itself is not copied.
func (ob *meshOut) head(h *mesh.Header) []byte {
	off := ob.used * mesh.HeaderLen
	b := ob.heads[off : off+mesh.HeaderLen : off+mesh.HeaderLen]
	ob.used++
	h.Put(b)
	return b
}

func (ob *meshOut) queue(p mesh.Port, f Frame) {
	if int(p) >= len(ob.perLink) {
		pl := make([][]Frame, int(p)+1)
		copy(pl, ob.perLink)
		ob.perLink = pl
	}
	if len(ob.perLink[p]) == 0 {
		ob.touched = append(ob.touched, p)
	}
	ob.perLink[p] = append(ob.perLink[p], f)
}

// send writes each link's frames with one WriteFrames; a link whose peer
// speaks another protocol gets none.
func (ob *meshOut) send(links *meshLinks) {
	for _, p := range ob.touched {
		n := uint64(len(ob.perLink[p]))
		switch lk := links.get(p); {
		case lk == nil:
			ob.noRoute += n
		case lk.mismatch.Load() != nil:
			ob.mismatch += n
		default:
			lk.dev.WriteFrames(ob.perLink[p])
			ob.sent += n
		}
	}
}

// meshCounters count what the mesh port did with frames.
type meshCounters struct {
	sent, transit, controlIn, controlOut               atomic.Uint64
	hopLimit, reversePath, noRoute, noTable, malformed atomic.Uint64
	hopLimitZero, vlanFiltered, protocolMismatch       atomic.Uint64
}

func (c *meshCounters) add(v *atomic.Uint64, n int) { v.Add(uint64(n)) }

// MeshStats is a snapshot of a MeshPort's counters.
type MeshStats struct {
	Sent     uint64 // frames written to links
	Transit  uint64 // unicast frames forwarded for other nodes
	HopLimit uint64 // not forwarded: the hop limit ran out here (delivered here if for here)
	// HopLimitZero: dropped, arrived with an exhausted hop limit (0). A
	// neighbour that follows the protocol never sends one; none is
	// delivered, to the TAP or elsewhere.
	HopLimitZero uint64
	ReversePath  uint64 // dropped: multi-destination frame off its tree, or a unicast that would bounce back
	NoRoute      uint64 // dropped: no next hop (egress unreachable, link gone), or a tree with no branch
	NoTable      uint64 // dropped: no table yet
	Malformed    uint64 // dropped: bad mesh header
	// VLANFiltered: frames dropped, or copies of multi-destination frames
	// not sent, because a link's VLAN filter does not carry their VLAN
	// (SetVLANFilter on a link).
	VLANFiltered uint64
	// ProtocolMismatch: frames from or for links whose peer speaks a
	// spanning tree, BPDUs included (mismatch.go).
	ProtocolMismatch uint64
	ControlIn        uint64 // control messages received
	ControlOut       uint64 // control messages sent
	Addresses        int    // addresses learned behind other nodes
}

// Stats returns the mesh port's counters.
func (mp *MeshPort) Stats() MeshStats {
	c := &mp.stats
	return MeshStats{Sent: c.sent.Load(), Transit: c.transit.Load(), HopLimit: c.hopLimit.Load(), HopLimitZero: c.hopLimitZero.Load(),
		ReversePath: c.reversePath.Load(), NoRoute: c.noRoute.Load(), NoTable: c.noTable.Load(),
		Malformed: c.malformed.Load(), VLANFiltered: c.vlanFiltered.Load(), ProtocolMismatch: c.protocolMismatch.Load(),
		ControlIn: c.controlIn.Load(), ControlOut: c.controlOut.Load(), Addresses: mp.addrs.len()}
}
