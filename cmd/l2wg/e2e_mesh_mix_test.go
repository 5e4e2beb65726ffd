package main

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
)

// rstpTable is the [stp] body plus [mesh] protocol = "rstp".
const rstpTable = shortTimers + "\n[mesh]\nprotocol = \"rstp\"\n"

// mixTriangle builds three fully meshed hypervisors with one VM each, the
// [stp]/[mesh] body of each from protos, and starts them.
func mixTriangle(t *testing.T, protos map[string]string) (*topo, map[string][]peerConf) {
	tp := newTopo(t)
	tp.stp = protos
	for _, hv := range []string{"hva", "hvb", "hvc"} {
		tp.addHV(hv)
	}
	tp.underlay("hva", "hvb", "ulab", "10.0.1.1", "10.0.1.2")
	tp.underlay("hvb", "hvc", "ulbc", "10.0.2.2", "10.0.2.3")
	tp.underlay("hva", "hvc", "ulac", "10.0.3.1", "10.0.3.3")
	tp.addVM("vma", "hva", "192.168.77.41")
	tp.addVM("vmb", "hvb", "192.168.77.42")
	tp.addVM("vmc", "hvc", "192.168.77.43")
	tp.makeKeys()
	ep := func(ip string) string { return fmt.Sprintf("%s:%d", ip, l2wgPort) }
	peers := map[string][]peerConf{
		"hva": {{Name: "hvb", Endpoint: ep("10.0.1.2")}, {Name: "hvc", Endpoint: ep("10.0.3.3")}},
		"hvb": {{Name: "hva", Endpoint: ep("10.0.1.1")}, {Name: "hvc", Endpoint: ep("10.0.2.3")}},
		"hvc": {{Name: "hva", Endpoint: ep("10.0.3.1")}, {Name: "hvb", Endpoint: ep("10.0.2.2")}},
	}
	return tp, peers
}

// logLines returns the lines of hv's l2wg log that contain every one of subs.
func (tp *topo) logLines(hv string, subs ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(tp.hvs[hv].Proc.Log(), "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// waitLogLine waits until hv's log has a line with every one of subs.
func (tp *topo) waitLogLine(hv string, timeout time.Duration, subs ...string) {
	tp.t.Helper()
	if !poll(timeout, 50*time.Millisecond, func() bool { return len(tp.logLines(hv, subs...)) > 0 }) {
		tp.t.Fatalf("%s: no log line with %q within %v", hv, subs, timeout)
	}
}

// junkWatch records, on every VM's eth0, the frames that no VM, host bridge
// or l2wg TAP of the lab sent: what a switch would hand its VMs if it took
// the other protocol's frames for data.
type junkWatch struct {
	tp     *topo
	known  map[string]bool
	listen map[string]*trunkListener
}

func (tp *topo) watchJunk(vms ...string) *junkWatch {
	tp.t.Helper()
	w := &junkWatch{tp: tp, known: map[string]bool{}, listen: map[string]*trunkListener{}}
	for _, v := range tp.vms {
		w.known[v.MAC.String()] = true
	}
	for _, hv := range tp.order {
		mac, err := tp.lab.MAC(hv, "br0")
		tp.must(err)
		w.known[mac.String()] = true
	}
	for _, v := range vms {
		w.listen[v] = tp.listen(v, "eth0")
	}
	return w
}

// knowTAPs adds the lab's TAPs' addresses (l2wg's spanning-tree messages
// and hellos come from them) once they exist.
func (w *junkWatch) knowTAPs() {
	for _, hv := range w.tp.order {
		if mac, err := w.tp.lab.MAC(hv, "l2wg0"); err == nil {
			w.known[mac.String()] = true
		}
	}
}

var meshControlAddress = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0f}

// check fails the test for every junk frame seen so far.
func (w *junkWatch) check(t *testing.T, when string) {
	t.Helper()
	w.knowTAPs()
	for vm, l := range w.listen {
		junk := l.matching(func(f trunkFrame) bool {
			if len(f.Data) < 14 {
				return true
			}
			dst, src := net.HardwareAddr(f.Data[:6]), net.HardwareAddr(f.Data[6:12])
			return !w.known[src.String()] || bytes.Equal(dst, meshControlAddress)
		})
		if n := len(l.matching(func(trunkFrame) bool { return true })); n == 0 {
			t.Errorf("%s: %s's eth0 captured nothing: the junk check is blind", when, vm)
		}
		if len(junk) > 0 {
			t.Errorf("%s: %s's eth0 got %d frames no VM, host or TAP of the lab sent; first: % x", when, vm, len(junk), junk[0].Data[:min(len(junk[0].Data), 32)])
		}
	}
}

// switchRx sums the frames every switch port of hv received.
func (tp *topo) switchRx(hv string) uint64 {
	tp.t.Helper()
	st, err := tp.status(hv)
	if err != nil {
		tp.t.Fatal(err)
	}
	var n uint64
	for _, p := range st.Ports {
		n += p.RxFrames
	}
	return n
}

// TestE2EMeshMixedProtocols: a triangle where hva runs rstp and hvb, hvc the
// shortest-path mesh. Both kinds of node see the mismatch on their mixed
// peerings, log one line per peering naming the peer and both protocols,
// count it, and carry no data over them: no junk frame reaches a VM, no
// loop, hvb and hvc talk. hva restarted with shortest-path: all three pairs
// talk.
func TestE2EMeshMixedProtocols(t *testing.T) {
	t.Parallel()
	tp, peers := mixTriangle(t, map[string]string{"hva": rstpTable, "hvb": meshTable, "hvc": meshTable})
	junk := tp.watchJunk("vma", "vmb", "vmc")
	for _, hv := range []string{"hva", "hvb", "hvc"} {
		tp.startL2WG(hv, nil, peers[hv]...)
	}
	tp.waitPing("vmb", "vmc", overlayUpTimeout)
	tp.waitPing("vmc", "vmb", 5*time.Second)

	// Each side names the other, once per peering.
	for _, c := range []struct{ hv, peer, peerProto, proto string }{
		{"hva", "hvb", "shortest-path", "rstp"}, {"hva", "hvc", "shortest-path", "rstp"},
		{"hvb", "hva", "rstp", "shortest-path"}, {"hvc", "hva", "rstp", "shortest-path"},
	} {
		subs := []string{"peer speaks another protocol", "peer=" + c.peer, "peer_protocol=" + c.peerProto, "protocol=" + c.proto}
		tp.waitLogLine(c.hv, 20*time.Second, subs...)
	}
	// hva's ports 8 s past their forward delay, traffic on every side.
	time.Sleep(9 * time.Second)
	tp.checkNoDuplicates("vmb", "vmc")
	tp.checkNoDuplicates("vmc", "vmb")
	if out, err := tp.ping("vma", tp.vms["vmb"].IP, 5*time.Second, "-c", "2", "-i", "0.3", "-W", "1"); err == nil {
		t.Errorf("vma (rstp) reached vmb over a mixed peering:\n%s", out)
	}
	before := map[string]uint64{}
	for _, hv := range tp.order {
		before[hv] = tp.switchRx(hv)
	}
	tp.ping("vma", "192.168.77.255", 5*time.Second, "-b", "-c", "3", "-i", "0.5", "-W", "1")
	tp.ping("vmb", "192.168.77.255", 5*time.Second, "-b", "-c", "3", "-i", "0.5", "-W", "1")
	time.Sleep(3 * time.Second)
	for _, hv := range tp.order {
		got := tp.switchRx(hv) - before[hv]
		t.Logf("%s: %d frames received by its switch in ~6 s", hv, got)
		if got > 2000 {
			t.Errorf("%s: %d frames in ~6 s: a storm", hv, got)
		}
	}
	junk.check(t, "mixed")
	// One line per peering, however long the mismatch lasts.
	for _, c := range [][2]string{{"hva", "hvb"}, {"hva", "hvc"}, {"hvb", "hva"}, {"hvc", "hva"}} {
		if n := len(tp.logLines(c[0], "peer speaks another protocol", "peer="+c[1])); n != 1 {
			t.Errorf("%s logged the mismatch with %s %d times, want once", c[0], c[1], n)
		}
	}
	// Counted: on hva's ports to the mesh nodes, and by the mesh nodes.
	st, err := tp.status("hva")
	if err != nil {
		tp.t.Fatal(err)
	}
	for _, p := range st.Ports {
		if (p.Name == "hvb" || p.Name == "hvc") && p.Drops["protocol-mismatch"] == 0 {
			t.Errorf("hva's port %s: no protocol-mismatch drop (%v)", p.Name, p.Drops)
		}
	}
	for _, hv := range []string{"hvb", "hvc"} {
		st, err := tp.status(hv)
		if err != nil {
			tp.t.Fatal(err)
		}
		if st.Switch.Drops["protocol-mismatch"] == 0 || st.Mesh == nil || st.Mesh.Stats.FrameDrops["protocol-mismatch"] == 0 {
			t.Errorf("%s: no protocol-mismatch count: switch %v, mesh %+v", hv, st.Switch.Drops, st.Mesh)
		}
		if st.Mesh != nil {
			if len(st.Mesh.Nodes) != 2 {
				t.Errorf("%s: %d nodes in the mesh database, want 2 (hva speaks rstp)", hv, len(st.Mesh.Nodes))
			}
		}
	}

	// hva restarted with the mesh: everyone talks, the mesh nodes say so.
	tp.stopL2WG("hva")
	tp.stp["hva"] = meshTable
	mark := map[string]int{"hvb": len(tp.hvs["hvb"].Proc.Log()), "hvc": len(tp.hvs["hvc"].Proc.Log())}
	tp.startL2WG("hva", nil, peers["hva"]...)
	for _, p := range [][2]string{{"vma", "vmb"}, {"vma", "vmc"}, {"vmb", "vma"}, {"vmc", "vma"}, {"vmb", "vmc"}} {
		tp.waitPing(p[0], p[1], 30*time.Second)
	}
	tp.checkNoDuplicates("vma", "vmb", "vmc")
	tp.checkNoDuplicates("vmb", "vma", "vmc")
	for _, hv := range []string{"hvb", "hvc"} {
		if !strings.Contains(tp.hvs[hv].Proc.Log()[mark[hv]:], "peer speaks this node's protocol again") {
			t.Errorf("%s did not log that hva speaks the mesh again", hv)
		}
	}
	if n := len(tp.logLines("hva", "peer speaks another protocol")); n != 0 {
		t.Errorf("hva, restarted with the mesh, logged %d mismatches", n)
	}
	junk.check(t, "after hva's restart")
}

// TestE2EMeshVLANFilters: [[peer]] vlans in mesh mode, as in spanning-tree
// mode: hv1's peering with hv2 carries VLAN 100 only. VLAN 100 flows both
// ways; VLAN 101 from site 2 is dropped as it enters hv1 (vlan-filtered)
// and VLAN 101 from site 1 is not sent to hv2.
func TestE2EMeshVLANFilters(t *testing.T) {
	t.Parallel()
	tp := newTrunkSites(t)
	toHV2, toHV1 := trunkPeers()
	tp.mesh = "shortest-path"
	for _, n := range []struct {
		hv   string
		peer peerConf
		vp   vlanPorts
	}{{"hv1", toHV2, vlanPorts{PeerVLANs: "100"}}, {"hv2", toHV1, vlanPorts{}}} {
		h := tp.hvs[n.hv]
		h.ConfPath = writeFile(t, tp.dir, n.hv+".toml", tp.vlanConfig(n.hv, n.peer, n.vp))
		p, err := tp.lab.Start(n.hv, l2wgBinary(t), "up", "-c", h.ConfPath)
		tp.must(err)
		h.Proc = p
		tp.waitTAP(n.hv)
	}
	if st, err := tp.status("hv1"); err != nil || st.Mesh == nil {
		t.Fatalf("hv1 runs no mesh (%v)", err)
	}
	vms := tp.vms
	// Untagged frames are not carried either: VLAN 100 itself proves the
	// overlay is up.
	rx1, rx2 := tp.listen("vm11", "eth0"), tp.listen("vm21", "eth0")
	tap2 := tp.listen("hv2", "l2wg0")
	tx1, tx2 := tp.sender("vm11", "eth0"), tp.sender("vm21", "eth0")
	const seq = 900000
	if !poll(overlayUpTimeout, 500*time.Millisecond, func() bool {
		tp.sendTrunk(tx1, vms["vm11"].MAC, broadcastMAC, layers.EthernetTypeDot1Q, []uint16{100}, seq-1000, 1, 300, 0)
		return len(rx2.matching(seqIn(seq-1000, seq-999))) > 0
	}) {
		t.Fatal("no VLAN 100 frame from site 1 reached vm21")
	}
	frameDrops := func(hv string) (sw, mesh uint64) {
		st, err := tp.status(hv)
		tp.must(err)
		if st.Mesh == nil {
			t.Fatalf("%s runs no mesh", hv)
		}
		return st.Switch.Drops["vlan-filtered"], st.Mesh.Stats.FrameDrops["vlan-filtered"]
	}
	sw0, mesh0 := frameDrops("hv1")
	for i, vid := range []uint16{100, 101} {
		s := uint32(seq + 100*i)
		tp.sendTrunk(tx2, vms["vm21"].MAC, broadcastMAC, layers.EthernetTypeDot1Q, []uint16{vid}, s, 10, 300, 0)
		tp.sendTrunk(tx1, vms["vm11"].MAC, broadcastMAC, layers.EthernetTypeDot1Q, []uint16{vid}, s+50, 10, 300, 0)
	}
	rx1.waitCount(t, "VLAN 100 frames from site 2", 10, 10*time.Second, seqIn(seq, seq+10))
	rx2.waitCount(t, "VLAN 100 frames from site 1", 10, 10*time.Second, seqIn(seq+50, seq+60))
	var sw, m uint64
	if !poll(10*time.Second, 100*time.Millisecond, func() bool {
		sw, m = frameDrops("hv1")
		return sw-sw0 >= 10 && m-mesh0 >= 20
	}) || sw-sw0 != 10 || m-mesh0 != 20 {
		t.Errorf("hv1: switch vlan-filtered drops moved by %d (want 10: VLAN 101 from hv2), mesh vlan-filtered by %d (want 20: those and the 10 copies not sent to hv2)", sw-sw0, m-mesh0)
	}
	if n := len(rx1.matching(seqIn(seq+100, seq+110))); n != 0 {
		t.Errorf("vm11 got %d VLAN 101 frames from site 2; want 0", n)
	}
	if n := len(tap2.matching(seqIn(seq+150, seq+160))); n != 0 {
		t.Errorf("hv2's TAP got %d VLAN 101 frames from site 1; want 0", n)
	}
	if n := len(tap2.matching(seqIn(seq+50, seq+60))); n != 10 {
		t.Errorf("hv2's TAP got %d of the 10 VLAN 100 frames from site 1", n)
	}
}
