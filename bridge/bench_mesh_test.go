package bridge

import (
	"testing"

	"github.com/l2wg/l2wg/bridge/mesh"
)

// benchMesh is five-sites with every link replaced by a counting port:
// pi0 has learned vm-vorke behind vorke and rho transits pi0's frames.
func benchMesh(b *testing.B) (n *meshNet, pi0, rho *meshNode) {
	n = fiveSitesMesh(b)
	n.fromVM("pi0", ethFrame(broadcastMAC, vmMAC(4), "arp"))
	n.fromVM("vorke", ethFrame(broadcastMAC, vmMAC(3), "arp"))
	for _, nd := range n.nodes {
		for p := range nd.peer {
			nd.mp.AddLink(p, "", new(countPort))
		}
	}
	return n, n.nodes[n.idx("pi0")], n.nodes[n.idx("rho")]
}

// BenchmarkMeshFromTAP: 32 full-size known-unicast frames from the TAP
// into the mesh (a header written in front of each).
func BenchmarkMeshFromTAP(b *testing.B) {
	_, pi0, _ := benchMesh(b)
	frames := batchOf(32, fullFrame(b, vmMAC(4), vmMAC(3)))
	b.SetBytes(int64(32 * len(frames[0].Data)))
	b.ReportAllocs()
	for b.Loop() {
		pi0.b.Input(pi0.tapID, frames)
	}
}

// BenchmarkMeshTransit: 32 full-size unicast frames forwarded by header.
func BenchmarkMeshTransit(b *testing.B) {
	n, pi0, rho := benchMesh(b)
	inner := fullFrame(b, vmMAC(4), vmMAC(3))
	h := mesh.Header{HopLimit: 8, Ingress: pi0.m.ID(), Egress: n.nodes[n.idx("vorke")].m.ID()}
	frames := make([]Frame, 32)
	for i := range frames {
		frames[i].Data = make([]byte, mesh.HeaderLen+len(inner))
		copy(frames[i].Data[mesh.HeaderLen:], inner)
	}
	from := rho.port[n.idx("pi0")]
	b.SetBytes(int64(32 * len(inner)))
	b.ReportAllocs()
	for b.Loop() {
		for i := range frames {
			h.Put(frames[i].Data)
		}
		rho.mp.InputFromLink(from, frames)
	}
}

// BenchmarkMeshToTAP: 32 full-size unicast frames for this node, out of
// the mesh into the switch and the TAP.
func BenchmarkMeshToTAP(b *testing.B) {
	n, pi0, _ := benchMesh(b)
	vorke := n.nodes[n.idx("vorke")]
	inner := fullFrame(b, vmMAC(4), vmMAC(3))
	h := mesh.Header{HopLimit: 8, Ingress: pi0.m.ID(), Egress: vorke.m.ID()}
	frames := make([]Frame, 32)
	for i := range frames {
		frames[i].Data = make([]byte, mesh.HeaderLen+len(inner))
		h.Put(frames[i].Data)
		copy(frames[i].Data[mesh.HeaderLen:], inner)
	}
	vorke.tap = nil // the fakePort would copy; count instead
	vorke.b.RemovePort(vorke.tapID)
	vorke.tapID = vorke.b.AddPort("tap", new(countPort))
	from := vorke.port[n.idx("epsilon")]
	b.SetBytes(int64(32 * len(inner)))
	b.ReportAllocs()
	for b.Loop() {
		vorke.mp.InputFromLink(from, frames)
	}
}
