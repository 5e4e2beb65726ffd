package tap

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// udpRunFrame builds datagram k of a flow: IPv4 ID id0+k (or IPv6), with
// a partial UDP checksum as a kernel with checksum offload hands it over.
func udpRunFrame(t testing.TB, v6 bool, dst, src net.HardwareAddr, srcIP, dstIP net.IP, sport, dport int, id uint16, payload []byte) (VNetHdr, []byte) {
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	var frame []byte
	if v6 {
		eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv6}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: srcIP, DstIP: dstIP}
		udp.SetNetworkLayerForChecksum(ip)
		frame = serialize(t, eth, ip, udp, gopacket.Payload(payload))
	} else {
		eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: id, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP, SrcIP: srcIP, DstIP: dstIP}
		udp.SetNetworkLayerForChecksum(ip)
		frame = serialize(t, eth, ip, udp, gopacket.Payload(payload))
	}
	return partialUDPAt(frame, v6), frame
}

// partialUDPAt is partialUDP for IPv4 or IPv6.
func partialUDPAt(frame []byte, v6 bool) VNetHdr {
	if !v6 {
		return partialUDP(frame)
	}
	const ipOff, l4Off = 14, 54
	udpLen := binary.BigEndian.Uint16(frame[l4Off+4:])
	pseudo := sum(0, frame[ipOff+8:ipOff+40]) + 17 + uint64(udpLen)
	binary.BigEndian.PutUint16(frame[l4Off+6:], fold(pseudo))
	var h VNetHdr
	h.SetFlags(FlagNeedsCsum)
	h.SetCsumStart(l4Off)
	h.SetCsumOffset(6)
	return h
}

type testFrame struct {
	hdr   VNetHdr
	frame []byte
}

func viewTestFrame(f *testFrame) (*VNetHdr, []byte) { return &f.hdr, f.frame }

// collectRuns runs WriteFrames' grouping without a device: the runs it
// would write, as (first index, datagrams, sealed header, sealed headers).
func collectRuns(frames []testFrame) (runs [][2]int) {
	var r usoRun
	for i := 0; i < len(frames); {
		a, ok := parseUDPDatagram(&frames[i].hdr, frames[i].frame)
		if !ok {
			runs = append(runs, [2]int{i, 1})
			i++
			continue
		}
		r.start(a, frames[i].frame)
		j := i + 1
		for ; j < len(frames); j++ {
			b, ok := parseUDPDatagram(&frames[j].hdr, frames[j].frame)
			if !ok || !r.extends(frames[i].frame, b, frames[j].frame) {
				break
			}
		}
		runs = append(runs, [2]int{i, r.n})
		r.clear()
		i = j
	}
	return runs
}

var (
	usoSrcIP6 = net.ParseIP("fd00::2")
	usoDstIP6 = net.ParseIP("fd00::1")
)

func TestUSORuns(t *testing.T) {
	dst := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	flow := func(v6 bool, sport int, id uint16, n int) testFrame {
		src, dstIP := peerIP, tapIP
		if v6 {
			src, dstIP = usoSrcIP6, usoDstIP6
		}
		h, f := udpRunFrame(t, v6, dst, peerMAC, src, dstIP, sport, 9000, id, bytes.Repeat([]byte{byte(id)}, n))
		return testFrame{h, f}
	}
	full := func(f testFrame) testFrame { // its checksum complete, not partial
		f.hdr = VNetHdr{}
		return f
	}
	badIPCsum := flow(false, 1, 3, 64)
	badIPCsum.frame[24] ^= 1
	for _, c := range []struct {
		name   string
		frames []testFrame
		want   [][2]int
	}{
		{"one flow", []testFrame{flow(false, 1, 7, 64), flow(false, 1, 8, 64), flow(false, 1, 9, 64)}, [][2]int{{0, 3}}},
		{"ipv6", []testFrame{flow(true, 1, 0, 512), flow(true, 1, 0, 512)}, [][2]int{{0, 2}}},
		{"shorter last ends the run", []testFrame{flow(false, 1, 1, 64), flow(false, 1, 2, 10), flow(false, 1, 3, 64)}, [][2]int{{0, 2}, {2, 1}}},
		{"longer breaks", []testFrame{flow(false, 1, 1, 64), flow(false, 1, 2, 65)}, [][2]int{{0, 1}, {1, 1}}},
		{"other port", []testFrame{flow(false, 1, 1, 64), flow(false, 2, 2, 64), flow(false, 2, 3, 64)}, [][2]int{{0, 1}, {1, 2}}},
		{"id gap", []testFrame{flow(false, 1, 1, 64), flow(false, 1, 3, 64)}, [][2]int{{0, 1}, {1, 1}}},
		{"id wraps", []testFrame{flow(false, 1, 0xffff, 64), flow(false, 1, 0, 64)}, [][2]int{{0, 2}}},
		{"complete checksum", []testFrame{full(flow(false, 1, 1, 64)), full(flow(false, 1, 2, 64))}, [][2]int{{0, 1}, {1, 1}}},
		{"bad ip checksum", []testFrame{flow(false, 1, 2, 64), badIPCsum}, [][2]int{{0, 1}, {1, 1}}},
		{"v4 then v6", []testFrame{flow(false, 1, 1, 64), flow(true, 1, 0, 64)}, [][2]int{{0, 1}, {1, 1}}},
	} {
		if got := collectRuns(c.frames); !equalRuns(got, c.want) {
			t.Errorf("%s: runs %v, want %v", c.name, got, c.want)
		}
	}

	// At most maxUSOSegs datagrams, at most 64 KiB of IP packet.
	var many []testFrame
	for i := range maxUSOSegs + 3 {
		many = append(many, flow(false, 1, uint16(i), 64))
	}
	if got := collectRuns(many); !equalRuns(got, [][2]int{{0, maxUSOSegs}, {maxUSOSegs, 3}}) {
		t.Errorf("%d datagrams: runs %v", len(many), got)
	}
	var big []testFrame
	for i := range 50 {
		big = append(big, flow(false, 1, uint16(i), 1472))
	}
	per := (maxUSOLen - 28) / 1472
	if got := collectRuns(big); !equalRuns(got, [][2]int{{0, per}, {per, 50 - per}}) {
		t.Errorf("50 datagrams of 1472 bytes: runs %v, want %d per superframe", got, per)
	}
}

func equalRuns(a, b [][2]int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The sealed superframe is what the kernel's UDP segmentation expects: IP
// lengths of the whole, a valid IPv4 header checksum, the partial UDP
// checksum of the pseudo-header with the whole UDP length.
func TestUSOSeal(t *testing.T) {
	dst := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	for _, v6 := range []bool{false, true} {
		src, dstIP := peerIP, tapIP
		if v6 {
			src, dstIP = usoSrcIP6, usoDstIP6
		}
		var frames []testFrame
		for i, n := range []int{100, 100, 100, 40} {
			h, f := udpRunFrame(t, v6, dst, peerMAC, src, dstIP, 5, 6, uint16(300+i), bytes.Repeat([]byte{byte(i)}, n))
			frames = append(frames, testFrame{h, f})
		}
		var r usoRun
		a, _ := parseUDPDatagram(&frames[0].hdr, frames[0].frame)
		r.start(a, frames[0].frame)
		for _, f := range frames[1:] {
			b, ok := parseUDPDatagram(&f.hdr, f.frame)
			if !ok || !r.extends(frames[0].frame, b, f.frame) {
				t.Fatalf("v6 %v: datagram did not join", v6)
			}
		}
		orig := bytes.Clone(frames[0].frame)
		r.seal(frames[0].frame)
		udpLen := 8 + 340
		h := r.head
		l4 := a.l4Off
		if got := int(binary.BigEndian.Uint16(h[l4+4:])); got != udpLen {
			t.Errorf("v6 %v: UDP length %d, want %d", v6, got, udpLen)
		}
		var pseudo uint64
		if v6 {
			if got := int(binary.BigEndian.Uint16(h[14+4:])); got != udpLen {
				t.Errorf("IPv6 payload length %d, want %d", got, udpLen)
			}
			pseudo = sum(0, h[14+8:14+40])
		} else {
			if got := int(binary.BigEndian.Uint16(h[14+2:])); got != 20+udpLen {
				t.Errorf("IPv4 total length %d, want %d", got, 20+udpLen)
			}
			if fold(sum(0, h[14:34])) != 0xffff {
				t.Errorf("IPv4 header checksum invalid: % x", h[14:34])
			}
			if id := binary.BigEndian.Uint16(h[14+4:]); id != 300 {
				t.Errorf("IPv4 ID %d, want the first datagram's 300", id)
			}
			pseudo = sum(0, h[14+12:14+20])
		}
		if got, want := binary.BigEndian.Uint16(h[l4+6:]), fold(pseudo+17+uint64(udpLen)); got != want {
			t.Errorf("v6 %v: partial checksum %#x, want %#x", v6, got, want)
		}
		if r.hdr.GSOType() != GSOUDPL4 || r.hdr.GSOSize() != 100 || int(r.hdr.HdrLen()) != l4+8 ||
			int(r.hdr.CsumStart()) != l4 || r.hdr.CsumOffset() != 6 || !r.hdr.NeedsCsum() {
			t.Errorf("v6 %v: header %x", v6, r.hdr)
		}
		if r.n != 4 || r.bytes != 340 || !bytes.Equal(r.payloads[3], bytes.Repeat([]byte{3}, 40)) {
			t.Errorf("v6 %v: payloads %d, %d bytes", v6, r.n, r.bytes)
		}
		if !bytes.Equal(frames[0].frame, orig) {
			t.Error("seal modified the caller's frame")
		}
	}
}

func FuzzUSORuns(f *testing.F) {
	dst := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	h, fr := udpRunFrame(f, false, dst, peerMAC, peerIP, tapIP, 1, 2, 5, make([]byte, 30))
	f.Add(h[:], fr, fr)
	f.Fuzz(func(t *testing.T, hb, a, b []byte) {
		var hdr VNetHdr
		copy(hdr[:], hb)
		frames := []testFrame{{hdr, a}, {hdr, b}}
		for _, run := range collectRuns(frames) {
			if run[1] < 1 || run[0]+run[1] > 2 {
				t.Fatalf("run %v", run)
			}
		}
		var r usoRun
		if d, ok := parseUDPDatagram(&hdr, a); ok {
			r.start(d, a)
			if e, ok := parseUDPDatagram(&hdr, b); ok && r.extends(a, e, b) {
				r.seal(a)
			}
		}
	})
}
