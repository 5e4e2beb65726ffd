package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// 802.1Q trunks end to end. This kernel has neither 8021q devices nor
// VLAN-aware bridges, so the VMs send and receive tagged frames on raw
// sockets, through host bridges that carry tags transparently, and l2wg does
// the separation. A transparent host bridge learns by MAC alone; where the
// test asks what l2wg decided (which site a frame of one VLAN went to), it
// watches l2wg's TAP itself: a packet socket on the TAP receives exactly the
// frames l2wg writes into it, and frames sent on it are what l2wg reads, as a
// VLAN-aware host bridge would hand them over.

// vlanTestMarker starts the UDP payload of every frame of these tests.
var vlanTestMarker = []byte("l2wg-e2e-trunk")

// vlanTestFrame builds a frame from src to dst with the given tags (outer
// first; tpid is the outer tag's TPID, inner tags are 802.1Q), IPv4, UDP, a
// payload starting with vlanTestMarker and seq, padded to size bytes.
func vlanTestFrame(src, dst net.HardwareAddr, tpid layers.EthernetType, vids []uint16, seq uint32, size int) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	ls := []gopacket.SerializableLayer{eth}
	if len(vids) > 0 {
		eth.EthernetType = tpid
	}
	for i, v := range vids {
		next := layers.EthernetTypeDot1Q
		if i == len(vids)-1 {
			next = layers.EthernetTypeIPv4
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: v, Priority: 2, Type: next})
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Id: uint16(seq),
		SrcIP: net.IPv4(10, 99, 0, 1), DstIP: net.IPv4(10, 99, 0, 2)}
	udp := &layers.UDP{SrcPort: 41000, DstPort: 41001}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	n := size - 14 - 4*len(vids) - 20 - 8
	if n < len(vlanTestMarker)+4 {
		return nil, fmt.Errorf("frame of %d bytes cannot hold the test payload", size)
	}
	payload := make([]byte, n)
	copy(payload, vlanTestMarker)
	binary.BigEndian.PutUint32(payload[len(vlanTestMarker):], seq)
	for i := len(vlanTestMarker) + 4; i < n; i++ {
		payload[i] = byte(int(seq) + i)
	}
	ls = append(ls, ip, udp, gopacket.Payload(payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, err
	}
	if len(buf.Bytes()) != size {
		return nil, fmt.Errorf("frame is %d bytes; want %d", len(buf.Bytes()), size)
	}
	return bytes.Clone(buf.Bytes()), nil
}

// trunkFrame is a frame of these tests as it was received: its tags' VIDs
// (outer first) and its sequence number.
type trunkFrame struct {
	Data []byte
	VIDs []uint16
	Seq  uint32
	Test bool // carries vlanTestMarker
}

func parseTrunkFrame(data []byte) trunkFrame {
	fr := trunkFrame{Data: data}
	p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
	for _, l := range p.Layers() {
		if tag, ok := l.(*layers.Dot1Q); ok {
			fr.VIDs = append(fr.VIDs, tag.VLANIdentifier)
		}
	}
	if udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && udp.DstPort == 41001 &&
		bytes.HasPrefix(udp.Payload, vlanTestMarker) && len(udp.Payload) >= len(vlanTestMarker)+4 {
		fr.Test = true
		fr.Seq = binary.BigEndian.Uint32(udp.Payload[len(vlanTestMarker):])
	}
	return fr
}

// outerVID is the VID of the frame's outer tag, 0 if untagged.
func (f trunkFrame) outerVID() uint16 {
	if len(f.VIDs) == 0 {
		return 0
	}
	return f.VIDs[0]
}

// A trunkListener records every frame a packet socket receives, from its
// start until the lab closes it.
type trunkListener struct {
	name string
	sock *netns.PacketSocket

	mu     sync.Mutex // protects frames
	frames []trunkFrame
}

// listen starts recording the frames that interface ifname of ns receives.
func (tp *topo) listen(ns, ifname string) *trunkListener {
	tp.t.Helper()
	s, err := tp.lab.OpenPacket(ns, ifname)
	tp.must(err)
	l := &trunkListener{name: ns + "/" + ifname, sock: s}
	go func() {
		for {
			fr, err := s.Recv(time.Now().Add(time.Hour))
			if err != nil {
				return // closed
			}
			tf := parseTrunkFrame(fr.Data)
			l.mu.Lock()
			l.frames = append(l.frames, tf)
			l.mu.Unlock()
		}
	}()
	tp.t.Cleanup(func() { s.Close() })
	return l
}

// matching returns the frames received so far for which keep is true.
func (l *trunkListener) matching(keep func(trunkFrame) bool) []trunkFrame {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []trunkFrame
	for _, f := range l.frames {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}

// waitCount waits until n frames for which keep is true have arrived, and
// returns them; it fails the test when they have not within timeout.
func (l *trunkListener) waitCount(t *testing.T, what string, n int, timeout time.Duration, keep func(trunkFrame) bool) []trunkFrame {
	t.Helper()
	var got []trunkFrame
	if !poll(timeout, 20*time.Millisecond, func() bool { got = l.matching(keep); return len(got) >= n }) {
		t.Errorf("%s: %d of %d %s within %v", l.name, len(got), n, what, timeout)
	}
	return got
}

// seqIn keeps the test frames whose sequence numbers are in [lo, hi).
func seqIn(lo, hi uint32) func(trunkFrame) bool {
	return func(f trunkFrame) bool { return f.Test && f.Seq >= lo && f.Seq < hi }
}

// sender opens a packet socket on interface ifname of ns, to send on.
func (tp *topo) sender(ns, ifname string) *netns.PacketSocket {
	tp.t.Helper()
	s, err := tp.lab.OpenPacket(ns, ifname)
	tp.must(err)
	tp.t.Cleanup(func() { s.Close() })
	return s
}

// sendTrunk builds and sends n frames with consecutive sequence numbers
// from seq on, one every gap, and returns them by sequence number.
func (tp *topo) sendTrunk(s *netns.PacketSocket, src, dst net.HardwareAddr, tpid layers.EthernetType, vids []uint16, seq uint32, n, size int, gap time.Duration) map[uint32][]byte {
	tp.t.Helper()
	sent := make(map[uint32][]byte, n)
	for i := range uint32(n) {
		f, err := vlanTestFrame(src, dst, tpid, vids, seq+i, size)
		tp.must(err)
		tp.must(s.Send(f))
		sent[seq+i] = f
		if gap > 0 {
			time.Sleep(gap) // pacing of the traffic, not a wait for a state
		}
	}
	return sent
}

// vlanPorts are the VLAN keys of one node's config: [tap] and its one
// [[peer]]; "" leaves a key out.
type vlanPorts struct {
	TAPVLANs, TAPUntagged   string
	PeerVLANs, PeerUntagged string
}

// vlanConfig renders hv's node.toml with one peer and the VLAN keys of vp.
func (tp *topo) vlanConfig(hv string, peer peerConf, vp vlanPorts) string {
	if peer.PublicKey == "" {
		peer.PublicKey = tp.hvs[peer.Name].Keys.Public
	}
	conf := nodeConf{
		PrivateKeyFile: tp.hvs[hv].Keys.PrivateFile,
		ListenPort:     l2wgPort,
		TAPName:        "l2wg0",
		Bridge:         "br0",
		Mesh:           tp.mesh,
		Peers:          []peerConf{peer},
	}
	text := conf.render()
	var tapKeys, peerKeys string
	if vp.TAPVLANs != "" {
		tapKeys += fmt.Sprintf("vlans = %q\n", vp.TAPVLANs)
	}
	if vp.TAPUntagged != "" {
		tapKeys += "untagged = " + vp.TAPUntagged + "\n"
	}
	if vp.PeerVLANs != "" {
		peerKeys += fmt.Sprintf("vlans = %q\n", vp.PeerVLANs)
	}
	if vp.PeerUntagged != "" {
		peerKeys += "untagged = " + vp.PeerUntagged + "\n"
	}
	text = strings.Replace(text, "\n[tap]\n", "\n[tap]\n"+tapKeys, 1)
	peerHead := fmt.Sprintf("\n[[peer]]\nname = %q\n", peer.Name)
	return strings.Replace(text, peerHead, peerHead+peerKeys, 1)
}

// startVLANNode writes hv's config (see vlanConfig) and starts its l2wg.
func (tp *topo) startVLANNode(hv string, peer peerConf, vp vlanPorts) {
	tp.t.Helper()
	h := tp.hvs[hv]
	h.ConfPath = writeFile(tp.t, tp.dir, hv+".toml", tp.vlanConfig(hv, peer, vp))
	p, err := tp.lab.Start(hv, l2wgBinary(tp.t), "up", "-c", h.ConfPath)
	tp.must(err)
	h.Proc = p
	tp.waitTAP(hv)
}

// reloadVLANNode rewrites hv's config and runs l2wg reload.
func (tp *topo) reloadVLANNode(hv string, peer peerConf, vp vlanPorts) {
	tp.t.Helper()
	writeFile(tp.t, tp.dir, hv+".toml", tp.vlanConfig(hv, peer, vp))
	if out, err := tp.lab.Exec(hv, l2wgBinary(tp.t), "reload"); err != nil {
		tp.t.Fatalf("l2wg reload in %s: %v: %s", hv, err, out)
	}
}

// trunkFDBEntry is an entry of `l2wg show fdb --json`.
type trunkFDBEntry struct {
	VID      uint16 `json:"vid"`
	MAC      string `json:"mac"`
	PortName string `json:"port_name"`
}

func (e trunkFDBEntry) String() string { return fmt.Sprintf("%d/%s@%s", e.VID, e.MAC, e.PortName) }

// fdbOf returns hv's FDB entries for mac in VLANs other than 0 as
// "vid/mac@port", sorted. Untagged entries are left out: the VMs' own
// untagged traffic (ping, IPv6 neighbour discovery) comes and goes.
func (tp *topo) fdbOf(hv string, mac net.HardwareAddr) []string {
	tp.t.Helper()
	out, err := tp.lab.Exec(hv, l2wgBinary(tp.t), "show", "--json", "fdb")
	if err != nil {
		tp.t.Fatalf("l2wg show fdb in %s: %v: %s", hv, err, out)
	}
	var entries []trunkFDBEntry
	if err := json.Unmarshal(out, &entries); err != nil {
		tp.t.Fatalf("l2wg show fdb --json in %s: %v: %s", hv, err, out)
	}
	var got []string
	for _, e := range entries {
		if e.MAC == mac.String() && e.VID != 0 {
			got = append(got, e.String())
		}
	}
	slices.Sort(got)
	return got
}

// waitFDB waits until hv's tagged FDB entries for mac (see fdbOf) are want.
func (tp *topo) waitFDB(hv string, mac net.HardwareAddr, want []string, timeout time.Duration) {
	tp.t.Helper()
	slices.Sort(want)
	var got []string
	if !poll(timeout, 100*time.Millisecond, func() bool { got = tp.fdbOf(hv, mac); return slices.Equal(got, want) }) {
		tp.t.Errorf("%s: FDB entries of %s are %q; want %q", hv, mac, got, want)
	}
}

// waitFDBHas waits until hv's FDB has entry want ("vid/mac@port").
func (tp *topo) waitFDBHas(hv string, mac net.HardwareAddr, want string, timeout time.Duration) {
	tp.t.Helper()
	var got []string
	if !poll(timeout, 100*time.Millisecond, func() bool { got = tp.fdbOf(hv, mac); return slices.Contains(got, want) }) {
		tp.t.Errorf("%s: FDB entries of %s are %q; want %q among them", hv, mac, got, want)
	}
}

// trunkPort is a port of `l2wg show --json`, the fields these tests read.
type trunkPort struct {
	Name           string            `json:"name"`
	TxFrames       uint64            `json:"tx_frames"`
	TxVLANFiltered uint64            `json:"tx_vlan_filtered"`
	Drops          map[string]uint64 `json:"drops"`
}

// trunkStatus is `l2wg show --json`, the fields these tests read.
type trunkStatus struct {
	Switch struct {
		StationMoves uint64 `json:"station_moves"`
	} `json:"switch"`
	Ports []trunkPort `json:"ports"`
}

func (tp *topo) trunkStatus(hv string) trunkStatus {
	tp.t.Helper()
	out, err := tp.lab.Exec(hv, l2wgBinary(tp.t), "show", "--json")
	if err != nil {
		tp.t.Fatalf("l2wg show in %s: %v: %s", hv, err, out)
	}
	var st trunkStatus
	if err := json.Unmarshal(out, &st); err != nil {
		tp.t.Fatalf("l2wg show --json in %s: %v", hv, err)
	}
	return st
}

// trunkPort returns hv's switch port named name (the TAP's name or a peer's name).
func (tp *topo) trunkPort(hv, name string) trunkPort {
	tp.t.Helper()
	for _, p := range tp.trunkStatus(hv).Ports {
		if p.Name == name {
			return p
		}
	}
	tp.t.Fatalf("%s has no switch port %q", hv, name)
	return trunkPort{}
}

// newTrunkSites builds two sites, hv1 with vm11, vm12, vm13 and hv2 with
// vm21, vm22, vm23 (192.168.78.x/24), on an underlay cable, with keys; l2wg
// is not started.
func newTrunkSites(t *testing.T) *topo {
	t.Helper()
	tp := newTopo(t)
	// Addresses learned behind the peer's own port, and filters on it: the
	// spanning tree's ports (the shortest-path mesh has one mesh port).
	tp.mesh = "rstp"
	tp.addHV("hv1")
	tp.addHV("hv2")
	tp.underlay("hv1", "hv2", "ul0", "10.0.0.1", "10.0.0.2")
	for _, v := range []string{"vm11", "vm12", "vm13", "vm21", "vm22", "vm23"} {
		tp.addVM(v, "hv"+v[2:3], "192.168.78."+v[2:])
	}
	tp.makeKeys()
	return tp
}

func trunkPeers() (toHV2, toHV1 peerConf) {
	return peerConf{Name: "hv2", Endpoint: fmt.Sprintf("10.0.0.2:%d", l2wgPort)},
		peerConf{Name: "hv1", Endpoint: fmt.Sprintf("10.0.0.1:%d", l2wgPort), Keepalive: 25}
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// TestE2EVLANTrunk: one trunk between two sites, every VLAN carried: VLANs
// 100-102 kept apart by per-VLAN learning, one MAC in two VLANs at two
// sites, QinQ, and malformed tags.
func TestE2EVLANTrunk(t *testing.T) {
	t.Parallel()
	tp := newTrunkSites(t)
	toHV2, toHV1 := trunkPeers()
	// QinQ's 1522-byte frames: a raw socket sends at most MTU + 14 bytes,
	// 4 more for an 802.1Q tag but not for an 802.1ad one, and a veth
	// passes on at most MTU + 18. The host bridges and the TAPs keep 1500:
	// the kernel has taken the outer tag off when it checks their MTU.
	for _, v := range []string{"vm11", "vm21"} {
		tp.must(tp.lab.SetMTU(v, "eth0", 1508))
		tp.must(tp.lab.SetMTU("hv"+v[2:3], "p"+v, 1508))
	}
	tp.startVLANNode("hv1", toHV2, vlanPorts{})
	tp.startVLANNode("hv2", toHV1, vlanPorts{})
	tp.waitPing("vm11", "vm21", overlayUpTimeout)

	vms := tp.vms
	t.Run("a_vlans_100_101_102_kept_apart", func(t *testing.T) {
		tp := tp.on(t)
		// Site 2 has one listener per VLAN: vm21 on 100, vm22 on 101, vm23
		// on 102, each announcing itself in its VLAN.
		listeners := map[uint16]*trunkListener{}
		for i, vid := range []uint16{100, 101, 102} {
			vm := fmt.Sprintf("vm2%d", i+1)
			listeners[vid] = tp.listen(vm, "eth0")
			tp.sendTrunk(tp.sender(vm, "eth0"), vms[vm].MAC, broadcastMAC, layers.EthernetTypeDot1Q, []uint16{vid}, 100+uint32(vid), 1, 100, 0)
			tp.waitFDB("hv1", vms[vm].MAC, []string{fmt.Sprintf("%d/%s@hv2", vid, vms[vm].MAC)}, 10*time.Second)
		}
		tap2 := tp.listen("hv2", "l2wg0")
		tx := tp.sender("vm11", "eth0")
		sent := map[uint32][]byte{}
		for i, vid := range []uint16{100, 101, 102} {
			dst := vms[fmt.Sprintf("vm2%d", i+1)].MAC
			for seq, f := range tp.sendTrunk(tx, vms["vm11"].MAC, dst, layers.EthernetTypeDot1Q, []uint16{vid}, 1000*uint32(vid), 5, 1518, 0) {
				sent[seq] = f
			}
		}
		for vid, l := range listeners {
			got := l.waitCount(t, fmt.Sprintf("VLAN %d frames", vid), 5, 10*time.Second, seqIn(1000*uint32(vid), 1000*uint32(vid)+5))
			for _, f := range got {
				if !bytes.Equal(f.Data, sent[f.Seq]) {
					t.Errorf("VLAN %d frame %d differs from what vm11 sent (tags %v, %d bytes)", vid, f.Seq, f.VIDs, len(f.Data))
				}
			}
		}
		// At site 2 l2wg delivered each frame once, with its own tag.
		all := tap2.matching(seqIn(100000, 103000))
		if len(all) != 15 {
			t.Errorf("hv2's TAP got %d of the 15 unicast frames", len(all))
		}
		for _, f := range all {
			if f.outerVID() != uint16(f.Seq/1000) {
				t.Errorf("frame %d of VLAN %d arrived at hv2 tagged %v", f.Seq, f.Seq/1000, f.VIDs)
			}
		}
		// A listener gets nothing of the other VLANs' unicast.
		for vid, l := range listeners {
			if other := l.matching(func(f trunkFrame) bool { return f.Test && f.Seq >= 100000 && f.outerVID() != vid }); len(other) > 0 {
				t.Errorf("the VLAN %d listener got %d frames of other VLANs", vid, len(other))
			}
		}

		// A broadcast in VLAN 100 leaves the VPN once, as VLAN 100.
		bcast := tp.sendTrunk(tx, vms["vm11"].MAC, broadcastMAC, layers.EthernetTypeDot1Q, []uint16{100}, 200000, 1, 200, 0)
		tap2.waitCount(t, "broadcasts", 1, 10*time.Second, seqIn(200000, 200001))
		for _, l := range listeners {
			l.waitCount(t, "broadcasts", 1, 10*time.Second, seqIn(200000, 200001))
		}
		time.Sleep(500 * time.Millisecond) // any late duplicate would be there by now
		got := tap2.matching(seqIn(200000, 200001))
		if len(got) != 1 || !bytes.Equal(got[0].Data, bcast[200000]) || !slices.Equal(got[0].VIDs, []uint16{100}) {
			t.Errorf("hv2's TAP got the VLAN 100 broadcast %d times; want once, unchanged, tagged 100 (got %v)", len(got), got)
		}
	})

	t.Run("b_qinq_1522_byte_frames_unchanged", func(t *testing.T) {
		tp := tp.on(t)
		rx := tp.listen("vm21", "eth0")
		sent := tp.sendTrunk(tp.sender("vm11", "eth0"), vms["vm11"].MAC, vms["vm21"].MAC, layers.EthernetTypeQinQ, []uint16{300, 100}, 300000, 20, 1522, 0)
		got := rx.waitCount(t, "QinQ frames", 20, 10*time.Second, seqIn(300000, 300020))
		for _, f := range got {
			if !bytes.Equal(f.Data, sent[f.Seq]) {
				t.Errorf("QinQ frame %d: %d bytes, tags %v, not the %d bytes sent", f.Seq, len(f.Data), f.VIDs, len(sent[f.Seq]))
			}
		}
		// The outer tag is the VLAN that l2wg learned in.
		tp.waitFDBHas("hv2", vms["vm11"].MAC, "300/"+vms["vm11"].MAC.String()+"@hv1", 10*time.Second)
	})

	t.Run("c_bad_tags_dropped_and_counted", func(t *testing.T) {
		tp := tp.on(t)
		bad := net.HardwareAddr{0x02, 0xba, 0xd0, 0, 0, 1}
		tap2 := tp.listen("hv2", "l2wg0")
		before := tp.trunkPort("hv1", "l2wg0").Drops["bad-vlan-tag"]
		// VID 4095 from a VM, through the host bridge.
		tp.sendTrunk(tp.sender("vm11", "eth0"), bad, broadcastMAC, layers.EthernetTypeDot1Q, []uint16{4095}, 400000, 5, 200, 0)
		// A kernel bridge drops a tag it cannot read, so these are handed
		// to l2wg on its TAP as a host bridge would: a tag on a runt (an
		// Ethernet header and no room for the tag), a truncated tag, and a
		// QinQ frame whose inner tag is cut.
		inj := tp.sender("hv1", "l2wg0")
		hdr := append(append(bytes.Clone(broadcastMAC), bad...), 0x81, 0x00)
		qinq, err := vlanTestFrame(bad, broadcastMAC, layers.EthernetTypeQinQ, []uint16{300, 100}, 400010, 100)
		tp.must(err)
		for _, f := range [][]byte{hdr, append(bytes.Clone(hdr), 0x00, 0x64, 0x08), qinq[:20]} {
			tp.must(inj.Send(f))
		}
		want := before + 8
		var got uint64
		if !poll(10*time.Second, 100*time.Millisecond, func() bool { got = tp.trunkPort("hv1", "l2wg0").Drops["bad-vlan-tag"]; return got >= want }) || got != want {
			t.Errorf("hv1's TAP port counted %d bad-vlan-tag drops; want %d", got-before, want-before)
		}
		// Nothing else is affected: a good frame still crosses.
		rx := tp.listen("vm21", "eth0")
		tp.sendTrunk(tp.sender("vm11", "eth0"), vms["vm11"].MAC, vms["vm21"].MAC, layers.EthernetTypeDot1Q, []uint16{100}, 400100, 1, 300, 0)
		rx.waitCount(t, "good frames after the bad ones", 1, 10*time.Second, seqIn(400100, 400101))
		if n := tap2.matching(func(f trunkFrame) bool { return bytes.Equal(f.Data[6:12], bad) }); len(n) > 0 {
			t.Errorf("%d frames with a bad tag reached hv2's TAP", len(n))
		}
		if len(tp.fdbOf("hv1", bad)) != 0 {
			t.Errorf("hv1 learned the source of the bad frames: %q", tp.fdbOf("hv1", bad))
		}
	})

	t.Run("d_one_mac_in_two_vlans_at_two_sites", func(t *testing.T) {
		tp := tp.on(t)
		// The VRRP MAC of a keepalived pair in each VLAN: VLAN 100 at
		// site 1, VLAN 101 at site 2, both sending at once.
		vrrp := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x07}
		var wg sync.WaitGroup
		for _, s := range []struct {
			vm  string
			vid uint16
		}{{"vm11", 100}, {"vm21", 101}} {
			tx := tp.sender(s.vm, "eth0")
			wg.Go(func() {
				for i := range uint32(50) {
					f, err := vlanTestFrame(vrrp, broadcastMAC, layers.EthernetTypeDot1Q, []uint16{s.vid}, 500000+1000*uint32(s.vid-100)+i, 100)
					if err == nil {
						err = tx.Send(f)
					}
					if err != nil {
						t.Errorf("%s: %v", s.vm, err)
						return
					}
					time.Sleep(20 * time.Millisecond) // 50 frames a second, as an advertisement stream
				}
			})
		}
		wg.Wait()
		m := vrrp.String()
		tp.waitFDB("hv1", vrrp, []string{"100/" + m + "@l2wg0", "101/" + m + "@hv2"}, 10*time.Second)
		tp.waitFDB("hv2", vrrp, []string{"101/" + m + "@l2wg0", "100/" + m + "@hv1"}, 10*time.Second)
		// The text of show fdb: one line per VLAN, the VLAN first.
		out, err := tp.lab.Exec("hv1", l2wgBinary(t), "show", "fdb")
		tp.must(err)
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[1] == m {
				lines = append(lines, f[0]+" "+f[2])
			}
		}
		if want := []string{"100 l2wg0", "101 hv2"}; !slices.Equal(lines, want) {
			t.Errorf("l2wg show fdb in hv1: lines of %s %q; want %q:\n%s", m, lines, want, out)
		}
		for _, hv := range []string{"hv1", "hv2"} {
			if n := tp.trunkStatus(hv).Switch.StationMoves; n != 0 {
				t.Errorf("%s: station_moves = %d; want 0", hv, n)
			}
		}
		// Unicast replies, handed to l2wg on its TAP as a VLAN-aware host
		// bridge would (a transparent one learns the MAC on two ports):
		// VLAN 100 goes to site 1, VLAN 101 to site 2, wherever sent from.
		tap1, tap2 := tp.listen("hv1", "l2wg0"), tp.listen("hv2", "l2wg0")
		r1 := net.HardwareAddr{0x02, 0x4e, 0x50, 0, 0, 1}
		r2 := net.HardwareAddr{0x02, 0x4e, 0x50, 0, 0, 2}
		in1, in2 := tp.sender("hv1", "l2wg0"), tp.sender("hv2", "l2wg0")
		tp.sendTrunk(in2, r2, vrrp, layers.EthernetTypeDot1Q, []uint16{100}, 600000, 5, 200, 0) // site 2 -> site 1
		tp.sendTrunk(in1, r1, vrrp, layers.EthernetTypeDot1Q, []uint16{101}, 601000, 5, 200, 0) // site 1 -> site 2
		tp.sendTrunk(in1, r1, vrrp, layers.EthernetTypeDot1Q, []uint16{100}, 602000, 5, 200, 0) // stays at site 1
		tp.sendTrunk(in2, r2, vrrp, layers.EthernetTypeDot1Q, []uint16{101}, 603000, 5, 200, 0) // stays at site 2
		tap1.waitCount(t, "VLAN 100 replies from site 2", 5, 10*time.Second, seqIn(600000, 600005))
		tap2.waitCount(t, "VLAN 101 replies from site 1", 5, 10*time.Second, seqIn(601000, 601005))
		time.Sleep(500 * time.Millisecond) // frames that should not cross would have by now
		if n := len(tap2.matching(seqIn(602000, 602005))); n != 0 {
			t.Errorf("%d VLAN 100 replies to the site 1 station went to site 2", n)
		}
		if n := len(tap1.matching(seqIn(603000, 603005))); n != 0 {
			t.Errorf("%d VLAN 101 replies to the site 2 station went to site 1", n)
		}
		if n := len(tap1.matching(seqIn(601000, 601005))) + len(tap2.matching(seqIn(600000, 600005))); n != 0 {
			t.Errorf("%d replies came back to the site they were sent from", n)
		}
		for _, hv := range []string{"hv1", "hv2"} {
			if n := tp.trunkStatus(hv).Switch.StationMoves; n != 0 {
				t.Errorf("%s: station_moves = %d after the replies; want 0", hv, n)
			}
		}
	})
}

// TestE2EVLANFilters: a peer that carries VLAN 100 only, then (reloaded
// live) a TAP that carries VLAN 100 only.
func TestE2EVLANFilters(t *testing.T) {
	t.Parallel()
	tp := newTrunkSites(t)
	toHV2, toHV1 := trunkPeers()
	tp.startVLANNode("hv1", toHV2, vlanPorts{PeerVLANs: "100"})
	tp.startVLANNode("hv2", toHV1, vlanPorts{})
	tp.waitPing("vm11", "vm21", overlayUpTimeout)
	vms := tp.vms

	// checkFiltered: from the filtering side's far end, VLAN 101 is dropped
	// and counted at port (hv, port); towards it, none is sent; VLAN 100
	// flows both ways.
	checkFiltered := func(t *testing.T, tp *topo, hv, port string, seq uint32) {
		rx1, rx2 := tp.listen("vm11", "eth0"), tp.listen("vm21", "eth0")
		tap2 := tp.listen("hv2", "l2wg0")
		before := tp.trunkPort(hv, port)
		tx1, tx2 := tp.sender("vm11", "eth0"), tp.sender("vm21", "eth0")
		for i, vid := range []uint16{100, 101} {
			s := seq + 100*uint32(i)
			tp.sendTrunk(tx2, vms["vm21"].MAC, broadcastMAC, layers.EthernetTypeDot1Q, []uint16{vid}, s, 10, 300, 0)
			tp.sendTrunk(tx1, vms["vm11"].MAC, broadcastMAC, layers.EthernetTypeDot1Q, []uint16{vid}, s+50, 10, 300, 0)
		}
		rx1.waitCount(t, "VLAN 100 frames from site 2", 10, 10*time.Second, seqIn(seq, seq+10))
		rx2.waitCount(t, "VLAN 100 frames from site 1", 10, 10*time.Second, seqIn(seq+50, seq+60))
		want := before.Drops["vlan-filtered"] + 10
		var got uint64
		if !poll(10*time.Second, 100*time.Millisecond, func() bool {
			got = tp.trunkPort(hv, port).Drops["vlan-filtered"]
			return got >= want
		}) || got != want {
			t.Errorf("%s port %s: %d vlan-filtered drops; want %d", hv, port, got-before.Drops["vlan-filtered"], 10)
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
		after := tp.trunkPort(hv, port)
		if d := after.TxVLANFiltered - before.TxVLANFiltered; d != 10 {
			t.Errorf("%s port %s: tx_vlan_filtered moved by %d; want 10 (the VLAN 101 broadcasts not sent to it)", hv, port, d)
		}
	}
	t.Run("a_peer_vlans_100", func(t *testing.T) {
		checkFiltered(t, tp.on(t), "hv1", "hv2", 700000)
	})
	t.Run("b_reload_to_tap_vlans_100", func(t *testing.T) {
		tp := tp.on(t)
		tp.reloadVLANNode("hv1", toHV2, vlanPorts{})
		tp.reloadVLANNode("hv2", toHV1, vlanPorts{TAPVLANs: "100"})
		checkFiltered(t, tp, "hv2", "l2wg0", 800000)
	})
}
