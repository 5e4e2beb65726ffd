package bridge

import (
	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/stp"
)

// Mixed protocols: a node configured with a spanning tree ("rstp", "stp")
// among shortest-path neighbours, or the other way round. Each side reads
// the other's protocol from frames that no VM can make a switch forward
// (mesh/control.go): the mesh's control frames go to an 802.1D reserved
// group address, and BPDUs to the bridge group address; neither is ever
// forwarded as data, so neither crosses a peering unless the peer's own
// protocol sent it.
//
//   - A spanning-tree node (a peer port, AddPeerPort) that hears a
//     shortest-path control frame sets the port apart: it forwards no data
//     from it or to it (DropProtocolMismatch) and forgets the addresses
//     learned on it; one line is logged. The spanning tree still runs on
//     the port (its BPDUs are what the mesh side reads). A BPDU from the
//     peer takes the port back: the peer was restarted with a spanning
//     tree.
//   - A mesh node that hears a BPDU on a link sets the link apart: no data
//     in or out, one line logged, and a mismatch notice (a control frame
//     of kind mesh.ControlMismatch) in answer, at most one a second, so
//     that the spanning-tree node sees the mismatch even if the mesh node
//     sends no control message of its own on that link (the node takes the
//     adjacency down while LinkMismatch says so). A control frame from the
//     link takes it back: the peer was restarted with the mesh.
//
// Neither side forwards the other's frames to its TAP, so mixing makes no
// junk frame and no loop: the mixed peering just carries nothing.

// noticeInterval is the least time between two mismatch notices on a link.
const noticeInterval = int64(1e9)

// peerSpeaksOurs reads a control frame that came in on peer port p. A
// shortest-path control frame says the peer speaks the mesh: the port is
// set apart (if it was not) and false returned, the frame goes no further.
// A BPDU takes a port that was set apart back. Everything else is true.
func (b *Bridge) peerSpeaksOurs(p *port, frame []byte) bool {
	switch {
	case mesh.IsControlFrame(frame):
		if _, _, _, err := mesh.DecodeControl(frame); err == nil {
			b.setMismatch(p, "shortest-path")
		}
		return false
	case Dst(frame) == MAC(stp.GroupAddress) && p.state.Load()&stateMismatch != 0:
		if _, err := stp.DecodeFrame(frame); err == nil {
			b.clearMismatch(p)
		}
	}
	return true
}

// setMismatch takes peer port p out of the data path: its peer speaks
// proto.
func (b *Bridge) setMismatch(p *port, proto string) {
	p.peerProto.Store(&proto)
	for {
		v := p.state.Load()
		if v&stateMismatch != 0 {
			return
		}
		if p.state.CompareAndSwap(v, v|stateMismatch) {
			break
		}
	}
	b.fdb.flush(p.id)
	b.log.Warn("peer speaks another protocol: the peering carries no data until both speak the same",
		"peer", p.name, "peer_protocol", proto, "protocol", b.protocol)
}

// clearMismatch puts peer port p back into the data path.
func (b *Bridge) clearMismatch(p *port) {
	for {
		v := p.state.Load()
		if v&stateMismatch == 0 {
			return
		}
		if p.state.CompareAndSwap(v, v&^stateMismatch) {
			break
		}
	}
	b.log.Info("peer speaks this node's protocol again: the peering carries data", "peer", p.name, "protocol", b.protocol)
}

// inputControl handles a frame that came in on link lk (from) and starts
// with mesh.FirstByte: a control frame (its message goes to the control
// handler) or a BPDU (the link is set apart); anything else is malformed.
func (mp *MeshPort) inputControl(lk *meshLink, from mesh.Port, data []byte, now int64, ob *meshOut) {
	if mesh.IsControlFrame(data) {
		_, kind, msg, err := mesh.DecodeControl(data)
		if err != nil {
			mp.stats.add(&mp.stats.malformed, 1)
			return
		}
		if lk != nil {
			mp.peerSpeaksMesh(lk)
		}
		if kind != mesh.ControlMessage {
			return // a notice for a spanning tree, from before this node's restart
		}
		mp.stats.add(&mp.stats.controlIn, 1)
		if c := mp.control.Load(); c != nil {
			(*c)(from, msg)
		}
		return
	}
	if lk != nil && len(data) >= EthernetHeaderLen && Dst(data) == MAC(stp.GroupAddress) {
		if bpdu, err := stp.DecodeFrame(data); err == nil {
			mp.peerSpeaksSpanningTree(lk, bpduProtocol(bpdu), now)
			ob.mismatch++
			return
		}
	}
	if lk != nil && lk.mismatch.Load() != nil {
		ob.mismatch++ // the spanning-tree peer's data, to 01:00:5e:... and the like
		return
	}
	mp.stats.add(&mp.stats.malformed, 1)
}

// bpduProtocol names the protocol of a BPDU as l2wg's config does.
func bpduProtocol(m stp.BPDU) string {
	switch {
	case m.Version >= 3:
		return "mstp"
	case m.Version == 2:
		return "rstp"
	}
	return "stp"
}

// peerSpeaksSpanningTree sets link lk apart (logged once) and answers with
// a mismatch notice, at most one a second.
func (mp *MeshPort) peerSpeaksSpanningTree(lk *meshLink, proto string, now int64) {
	if old := lk.mismatch.Swap(&proto); old == nil {
		mp.b.log.Warn("peer speaks another protocol: the link carries no data until both speak the same",
			"peer", lk.name, "peer_protocol", proto, "protocol", "shortest-path")
	}
	stamp := now + 1 // 0 is never
	if last := lk.noticed.Load(); last != 0 && stamp-last < noticeInterval || !lk.noticed.CompareAndSwap(last, stamp) {
		return
	}
	var b [mesh.ControlHeaderLen]byte
	mesh.PutControlHeader(b[:], mp.self, mesh.ControlMismatch)
	lk.dev.WriteFrames([]Frame{{Data: b[:]}})
}

// peerSpeaksMesh takes link lk back if it was set apart.
func (mp *MeshPort) peerSpeaksMesh(lk *meshLink) {
	if lk.mismatch.Load() == nil {
		return
	}
	if old := lk.mismatch.Swap(nil); old != nil {
		mp.b.log.Info("peer speaks this node's protocol again: the link carries data", "peer", lk.name, "protocol", "shortest-path")
	}
}

// LinkMismatch returns the protocol heard from the peer on link p when it
// is a spanning tree (the link then carries no data, and the node should
// hold the peer's adjacency down); ok is false otherwise.
func (mp *MeshPort) LinkMismatch(p mesh.Port) (proto string, ok bool) {
	if lk := mp.links.Load().get(p); lk != nil {
		if s := lk.mismatch.Load(); s != nil {
			return *s, true
		}
	}
	return "", false
}
