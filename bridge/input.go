package bridge

import "github.com/l2wg/l2wg/stp"

// Input switches frames that came in on port in (br_input.c's job). Each
// port's reader goroutine calls it, concurrently. It is synchronous: it writes
// the frames to their egress ports (one WriteFrames per port, see Port) and
// hands control frames to the control handler before it returns, and then
// nobody holds the frames any more. Input on a port that does not exist is
// ignored.
//
// Per frame, in order (802.1D's relay, as the Linux bridge does it):
//   - shorter than an Ethernet header: dropped (DropRunt);
//   - group or zero source address: dropped (DropMulticastSource, DropZeroSource);
//   - to a control address: to the control handler whatever the port state,
//     never forwarded (DropNoControlHandler without one);
//   - source in the port's deny filter: dropped (DropFilteredSource);
//   - a malformed VLAN tag: dropped (DropBadVLANTag); a VLAN the port does
//     not carry: dropped (DropVLANFiltered);
//   - if the port state learns: the (VID, source) is learned on this port
//     (moved here if it was known on another); if the FDB is full a new
//     address is not learned (DropFDBFull) and the frame goes on;
//   - if the port state does not forward: dropped (DropNotForwarding; a
//     peer port whose peer speaks another protocol: DropProtocolMismatch);
//   - to a (VID, unicast address) known and fresh: out of its port, unless
//     that is this port (DropSamePort), not forwarding (DropNotForwarding) or
//     not carrying the VLAN (DropVLANFiltered);
//   - otherwise (broadcast, multicast, unknown or expired unicast): flooded
//     to every forwarding port but this one that carries the VLAN.
func (b *Bridge) Input(in PortID, frames []Frame) {
	tab := b.ports.Load()
	p := tab.get(in)
	if p == nil || len(frames) == 0 {
		return
	}
	f := &b.fdb
	raw := p.state.Load()
	ig := ingress{
		fdb:          f,
		tab:          tab,
		in:           in,
		state:        dataState(raw),
		notFwd:       DropNotForwarding,
		deny:         p.filter.Load(),
		vlans:        p.vlans.Load(),
		egressVLANs:  b.vlanFiltered.Load() > 0,
		controlAddrs: b.controlAddrs.Load(),
		now:          b.now(),
		ageing:       f.ageing.Load(),
		bt:           getBatch(len(frames), len(tab.ports)),
	}
	bt := ig.bt
	if raw&stateMismatch != 0 {
		ig.notFwd = DropProtocolMismatch
	}
	if p.storm.limit.Load() > 0 {
		ig.storm = &p.storm
	}

	f.mu.RLock()
	for i := range frames {
		ig.decideLocked(i, &frames[i])
	}
	f.mu.RUnlock()
	if ig.stormBudget > 0 {
		ig.storm.giveBack(ig.stormBudget)
	}

	if len(bt.learn) > 0 {
		bt.drops[DropFDBFull] += f.learnAll(p, bt.learn, ig.now, b.log)
	}
	if bt.drops[DropFDBFull] > 0 {
		f.logFull(b.log, p, ig.now)
	}
	bt.deliver(tab, in, frames)
	b.handleControl(p, bt)

	p.stats.rxFrames.Add(uint64(len(frames)))
	p.stats.rxBytes.Add(bt.rxBytes)
	p.stats.drops.add(&bt.drops)
	b.drops.add(&bt.drops)
	putBatch(bt)
}

// ingress is what one Input call reads once and uses for every frame: the
// port table, the ingress port's state and filter, the time.
type ingress struct {
	fdb          *fdb
	tab          *portTable
	in           PortID
	state        stp.PortState // the ingress port's, as the data path obeys it
	notFwd       DropReason    // why a frame is dropped when state does not forward
	deny         *macSet
	vlans        *vlanFilter // the ingress port's; nil: all
	egressVLANs  bool        // some port has a VLAN filter
	controlAddrs *macSet
	now, ageing  int64
	bt           *batch
	storm        *stormBucket // nil when the port has no storm limit
	stormBudget  int64        // tokens taken from storm and not yet used
}

// decideLocked learns from input frame i and decides where it goes, recording
// the decision in the batch. Called with fdb.mu held for reading.
func (ig *ingress) decideLocked(i int, fr *Frame) {
	bt := ig.bt
	bt.rxBytes += uint64(len(fr.Data))
	if len(fr.Data) < EthernetHeaderLen {
		bt.drop(i, DropRunt)
		return
	}
	eth := Ethernet(fr.Data)
	dst, src := eth.Dst(), eth.Src()
	switch {
	case src.IsMulticast():
		bt.drop(i, DropMulticastSource)
		return
	case src.IsZero():
		bt.drop(i, DropZeroSource)
		return
	case isControl(dst, ig.controlAddrs):
		bt.dest[i] = destNone
		bt.control = append(bt.control, *fr)
		return
	case ig.deny.contains(src):
		bt.drop(i, DropFilteredSource)
		return
	}
	var vid uint16 // Ethernet.VLAN, its untagged case first
	if tpid := eth.EtherType(); tpid == TPIDDot1Q || tpid == TPIDDot1ad {
		var ok bool
		if vid, ok = eth.tagVLAN(tpid); !ok {
			bt.drop(i, DropBadVLANTag)
			return
		}
	}
	if !ig.vlans.carries(vid) {
		bt.drop(i, DropVLANFiltered)
		return
	}
	if ig.state.Learns() {
		key := eth.srcKey(vid)
		switch ig.fdb.learnLocked(key, ig.in, ig.now) {
		case learnLate:
			// Consecutive frames from one new host learn it once.
			if n := len(bt.learn); n > 0 && bt.learn[n-1].src == key {
				bt.learn[n-1].frames++
			} else {
				bt.learn = append(bt.learn, pendingLearn{key, 1})
			}
		case learnFull:
			bt.drops[DropFDBFull]++
		}
	}
	if !ig.state.Forwards() {
		bt.drop(i, ig.notFwd)
		return
	}
	if dst.IsMulticast() {
		ig.flood(i, fr, vid)
		return
	}
	out, known := ig.fdb.lookupLocked(eth.dstKey(vid), ig.now, ig.ageing)
	switch {
	case !known:
		ig.flood(i, fr, vid)
	case out == ig.in:
		bt.drop(i, DropSamePort)
	default:
		op := ig.tab.get(out)
		switch {
		case op == nil || !op.dataState().Forwards():
			bt.drop(i, DropNotForwarding)
		case ig.egressVLANs && !op.vlans.Load().carries(vid):
			bt.drop(i, DropVLANFiltered)
		default:
			bt.unicast(i, fr, out)
		}
	}
}

// flood floods frame i of VLAN vid unless the ingress port's storm control
// says no.
func (ig *ingress) flood(i int, fr *Frame, vid uint16) {
	if ig.storm != nil {
		if ig.stormBudget == 0 {
			ig.stormBudget = ig.storm.take(ig.now, stormChunk)
			if ig.stormBudget == 0 {
				ig.bt.drop(i, DropStorm)
				return
			}
		}
		ig.stormBudget--
	}
	ig.bt.floodFrame(i, fr, vid)
}

// stormChunk is how many tokens an Input call takes from a storm bucket at
// once; unused ones are returned when the call ends.
const stormChunk = 64

// handleControl hands the control frames of a batch that came in on port p
// to the control handler, or drops and counts them when there is none. On a
// peer port it first reads what they say of the peer's protocol
// (mismatch.go): the shortest-path mesh's control frames go no further.
func (b *Bridge) handleControl(p *port, bt *batch) {
	if len(bt.control) == 0 {
		return
	}
	h := b.control.Load()
	for _, fr := range bt.control {
		if p.peer && !b.peerSpeaksOurs(p, fr.Data) {
			bt.drops[DropProtocolMismatch]++
			continue
		}
		if h == nil {
			bt.drops[DropNoControlHandler]++
			continue
		}
		(*h)(p.id, fr)
	}
}
