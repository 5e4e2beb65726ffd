package bridge

import (
	"testing"

	"github.com/l2wg/l2wg/bridge/mesh"
)

// lineMesh is a - b - c: b's link to c carries only VLAN 100 (set as the
// node does, through Bridge.SetVLANFilter with the link's number).
func lineMesh(t *testing.T) *meshNet {
	n := newMeshNet(t, "a", "b", "c")
	n.link("a", "b", 10)
	n.link("b", "c", 10)
	n.converge()
	b := n.nodes[n.idx("b")]
	var vids VIDSet
	vids.Add(100)
	b.b.SetVLANFilter(PortID(b.port[n.idx("c")]), VLANFilter{VIDs: vids})
	if got := b.b.VLANFilter(PortID(b.port[n.idx("c")])); got.String() != "100" {
		t.Fatalf("link filter %s, want 100", got)
	}
	return n
}

// TestMeshLinkVLANFilter: a filter on a link applies to the frames that
// cross it either way, transit included, as a filter on a spanning-tree
// peer port: other VLANs stop there (vlan-filtered), the rest of the mesh
// still gets them, and paths do not change.
func TestMeshLinkVLANFilter(t *testing.T) {
	n := lineMesh(t)
	a, b, c := n.nodes[n.idx("a")], n.nodes[n.idx("b")], n.nodes[n.idx("c")]
	for _, tc := range []struct {
		vid  uint16
		want map[string]int
	}{
		{100, map[string]int{"b": 1, "c": 1}},
		{200, map[string]int{"b": 1}},
		{0, map[string]int{"b": 1}}, // untagged: not carried either
	} {
		f := arpRequest(t, vmMAC(1), tc.vid)
		n.fromVM("a", f)
		if got := n.tapsGot(f); !equalCounts(got, tc.want) {
			t.Errorf("VLAN %d broadcast from a: TAPs got %v, want %v", tc.vid, got, tc.want)
		}
	}
	if st := b.mp.Stats(); st.VLANFiltered != 2 {
		t.Errorf("b: vlan-filtered %d, want 2 (the copies of VLAN 200 and untagged for c)", st.VLANFiltered)
	}
	// From c's side: VLAN 200 from c's VM is dropped as it enters b.
	f := arpRequest(t, vmMAC(3), 200)
	n.fromVM("c", f)
	if got := n.tapsGot(f); len(got) != 0 {
		t.Errorf("VLAN 200 from c reached TAPs %v", got)
	}
	// A unicast of VLAN 200 transiting b towards c: dropped at b.
	inner := taggedUDPFrame(t, vmMAC(1), vmMAC(3), 200, 0)
	d := make([]byte, mesh.HeaderLen, mesh.HeaderLen+len(inner))
	h := mesh.Header{HopLimit: 4, Ingress: a.m.ID(), Egress: c.m.ID()}
	h.Put(d)
	b.mp.InputFromLink(b.port[n.idx("a")], []Frame{{Data: append(d, inner...)}})
	n.pump()
	if got := n.tapsGot(inner); len(got) != 0 {
		t.Errorf("a VLAN 200 unicast crossed b's filtered link: %v", got)
	}
	st := b.mp.Stats()
	if st.VLANFiltered != 4 || st.Transit != 0 {
		t.Errorf("b: vlan-filtered %d (want 4), transit %d (want 0)", st.VLANFiltered, st.Transit)
	}
	if d := b.b.Stats().Drops[DropVLANFiltered]; d != 2 {
		t.Errorf("b's switch: vlan-filtered drops %d, want 2 (c's broadcast, the transit unicast)", d)
	}
	// The same unicast in VLAN 100 transits.
	inner100 := taggedUDPFrame(t, vmMAC(1), vmMAC(3), 100, 0)
	h.Put(d)
	b.mp.InputFromLink(b.port[n.idx("a")], []Frame{{Data: append(d[:mesh.HeaderLen], inner100...)}})
	n.pump()
	if got := n.tapsGot(inner100); got["c"] != 1 {
		t.Errorf("a VLAN 100 unicast for c: TAPs got %v", got)
	}
}

// TestMeshLinkVLANFilterAtIngressNode: a's own link filtered: its VMs'
// frames of other VLANs never leave a, unicast (dropped) or broadcast (no
// copy sent).
func TestMeshLinkVLANFilterAtIngressNode(t *testing.T) {
	n := lineMesh(t)
	a := n.nodes[n.idx("a")]
	var vids VIDSet
	vids.Add(300)
	a.mp.SetVLANFilter(a.port[n.idx("b")], VLANFilter{VIDs: vids, Untagged: true})
	// c's VM is learned everywhere in VLAN 100? No: a carries only 300.
	for _, vid := range []uint16{100, 200} {
		f := arpRequest(t, vmMAC(1), vid)
		n.fromVM("a", f)
		if got := n.tapsGot(f); len(got) != 0 {
			t.Errorf("VLAN %d broadcast left a: %v", vid, got)
		}
	}
	// Untagged passes a's link but not b's link to c.
	f := arpRequest(t, vmMAC(1), 0)
	n.fromVM("a", f)
	if got := n.tapsGot(f); !equalCounts(got, map[string]int{"b": 1}) {
		t.Errorf("untagged broadcast from a: %v", got)
	}
	// b's VM answers untagged; then a's unicast to it in VLAN 200 (an
	// address learned in VLAN 200 behind b, by a frame from b's VM)...
	n.fromVM("b", arpRequest(t, vmMAC(2), 200)) // dropped as it enters a
	if _, ok := a.mp.AddressNode(200, vmMAC(2)); ok {
		t.Error("a learned an address from a VLAN its link does not carry")
	}
	n.fromVM("b", arpRequest(t, vmMAC(2), 0))
	n.tapsGot(nil)
	uc := udpFrame(t, vmMAC(1), vmMAC(2), "untagged unicast")
	n.fromVM("a", uc)
	if got := n.tapsGot(uc); !equalCounts(got, map[string]int{"b": 1}) {
		t.Errorf("untagged unicast a -> b: %v", got)
	}
	if st := a.mp.Stats(); st.VLANFiltered != 3 {
		t.Errorf("a: vlan-filtered %d, want 3 (two broadcasts not sent, one frame dropped on the way in)", st.VLANFiltered)
	}
}

// TestMeshTAPVLANFilter: [tap] vlans in mesh mode: the TAP's filter keeps
// other VLANs from its VMs, both ways, and does not touch transit.
func TestMeshTAPVLANFilter(t *testing.T) {
	n := newMeshNet(t, "a", "b", "c")
	n.link("a", "b", 10)
	n.link("b", "c", 10)
	n.converge()
	b := n.nodes[n.idx("b")]
	var vids VIDSet
	vids.Add(100)
	b.b.SetVLANFilter(b.tapID, VLANFilter{VIDs: vids})
	f := arpRequest(t, vmMAC(1), 200)
	n.fromVM("a", f)
	if got := n.tapsGot(f); !equalCounts(got, map[string]int{"c": 1}) {
		t.Errorf("VLAN 200 broadcast from a: %v, want only c (b's TAP does not carry it)", got)
	}
	f = arpRequest(t, vmMAC(1), 100)
	n.fromVM("a", f)
	if got := n.tapsGot(f); !equalCounts(got, map[string]int{"b": 1, "c": 1}) {
		t.Errorf("VLAN 100 broadcast from a: %v", got)
	}
	f = arpRequest(t, vmMAC(2), 200)
	n.fromVM("b", f)
	if got := n.tapsGot(f); len(got) != 0 {
		t.Errorf("VLAN 200 from b's TAP reached %v", got)
	}
	if d := b.b.Stats().Drops[DropVLANFiltered]; d != 1 {
		t.Errorf("b: vlan-filtered drops %d, want 1", d)
	}
}

func equalCounts(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
