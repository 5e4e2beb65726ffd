package bridge

import "sync"

// Frame destinations recorded per input frame of a batch; a destination of 0
// or more is the PortID of a known unicast frame.
const (
	destNone  int32 = -1 // dropped, or a control frame
	destFlood int32 = -2 // broadcast, multicast or unknown unicast
)

// batch is the scratch of one Input call, reused through batchPool so that a
// steady state Input allocates nothing. The frames it holds are copies of the
// caller's Frame values (the Data slices are shared, never copied); they are
// cleared before the batch returns to the pool.
type batch struct {
	dest    []int32        // per input frame: destNone, destFlood or a PortID
	vid     []uint16       // per flooded input frame: its VID
	out     [][]Frame      // indexed by PortID: known-unicast frames for that port
	touched []PortID       // ports with frames in out
	flood   []Frame        // frames for every forwarding port but the ingress one
	merged  []Frame        // a port's unicast and flood frames, in input order
	control []Frame        // frames for the control handler
	learn   []pendingLearn // source addresses to learn under the FDB write lock

	rxBytes uint64
	drops   Drops
}

// pendingLearn is a (VID, source address) that Input could not learn under
// the FDB read lock, and the number of consecutive frames it came in.
type pendingLearn struct {
	src    fdbKey
	frames uint64
}

var batchPool = sync.Pool{New: func() any { return new(batch) }}

// getBatch returns an empty batch with room for nframes input frames and
// nports ports.
func getBatch(nframes, nports int) *batch {
	bt := batchPool.Get().(*batch)
	if cap(bt.dest) < nframes {
		bt.dest = make([]int32, nframes)
	}
	bt.dest = bt.dest[:nframes]
	if cap(bt.vid) < nframes {
		bt.vid = make([]uint16, nframes)
	}
	bt.vid = bt.vid[:nframes]
	if len(bt.out) < nports {
		out := make([][]Frame, nports)
		copy(out, bt.out)
		bt.out = out
	}
	return bt
}

// putBatch clears bt, so that the pool pins no frame buffers, and returns it
// to the pool.
func putBatch(bt *batch) {
	for _, id := range bt.touched {
		bt.out[id] = clearFrames(bt.out[id])
	}
	bt.touched = bt.touched[:0]
	bt.flood = clearFrames(bt.flood)
	bt.merged = clearFrames(bt.merged)
	bt.control = clearFrames(bt.control)
	bt.learn = bt.learn[:0]
	bt.rxBytes = 0
	bt.drops = Drops{}
	batchPool.Put(bt)
}

// clearFrames drops the references held by s, up to its capacity (a merged
// list is reused for several ports of one call and may have been longer).
func clearFrames(s []Frame) []Frame {
	clear(s[:cap(s)])
	return s[:0]
}

// drop counts a dropped input frame.
func (bt *batch) drop(i int, r DropReason) {
	bt.dest[i] = destNone
	bt.drops[r]++
}

// unicast queues input frame i for port id.
func (bt *batch) unicast(i int, f *Frame, id PortID) {
	bt.dest[i] = int32(id)
	if len(bt.out[id]) == 0 {
		bt.touched = append(bt.touched, id)
	}
	bt.out[id] = append(bt.out[id], *f)
}

// floodFrame queues input frame i, of VLAN vid, for every forwarding port but
// the ingress one (that carries vid).
func (bt *batch) floodFrame(i int, f *Frame, vid uint16) {
	bt.dest[i] = destFlood
	bt.vid[i] = vid
	bt.flood = append(bt.flood, *f)
}

// deliver writes the frames of one Input call: one WriteFrames per egress
// port, in input order (br_forward.c's job). Every port that only floods and
// carries every VLAN gets the same flood slice; a port that also has
// known-unicast frames, or has a VLAN filter, gets its own list in input
// order: its unicast frames and the flood frames of the VLANs it carries.
func (bt *batch) deliver(tab *portTable, in PortID, frames []Frame) {
	if len(bt.flood) == 0 {
		for _, id := range bt.touched {
			p := tab.ports[id]
			p.transmit(bt.out[id], frameBytes(bt.out[id]))
		}
		return
	}
	floodBytes := frameBytes(bt.flood)
	for id, p := range tab.ports {
		if p == nil || PortID(id) == in {
			continue
		}
		unicast := bt.out[id]
		vf := p.vlans.Load()
		switch {
		case !p.dataState().Forwards():
			// It stopped forwarding since the unicast decision, or
			// never did: no flooding to it.
			if len(unicast) > 0 {
				p.transmit(unicast, frameBytes(unicast))
			}
		case vf != nil:
			merged := bt.mergeVLANs(frames, PortID(id), vf)
			if skipped := len(bt.flood) + len(unicast) - len(merged); skipped > 0 {
				p.stats.txVLANFiltered.Add(uint64(skipped))
			}
			if len(merged) > 0 {
				p.transmit(merged, frameBytes(merged))
			}
		case len(unicast) == 0:
			p.transmit(bt.flood, floodBytes)
		default:
			merged := bt.merge(frames, PortID(id))
			p.transmit(merged, frameBytes(merged))
		}
	}
}

// mergeVLANs returns the input frames for port id, unicast and the flood
// frames of the VLANs vf carries, in order.
func (bt *batch) mergeVLANs(frames []Frame, id PortID, vf *vlanFilter) []Frame {
	bt.merged = bt.merged[:0]
	for i, d := range bt.dest {
		if d == int32(id) || d == destFlood && vf.carries(bt.vid[i]) {
			bt.merged = append(bt.merged, frames[i])
		}
	}
	return bt.merged
}

// merge returns the input frames for port id, unicast and flood, in order.
func (bt *batch) merge(frames []Frame, id PortID) []Frame {
	bt.merged = bt.merged[:0]
	for i, d := range bt.dest {
		if d == destFlood || d == int32(id) {
			bt.merged = append(bt.merged, frames[i])
		}
	}
	return bt.merged
}
