package tap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// superSpec describes a TCP superframe as a kernel with TSO hands it over.
type superSpec struct {
	v6            bool
	vlan          bool // an 802.1Q tag, VID 42
	qinq          bool // an 802.1ad tag, VID 300, before the 802.1Q one (with vlan)
	payload       int
	mss           int
	fin, psh, cwr bool
	ecn           bool // GSOECN in the header
}

const superSeq = 0xffffa000 // wraps within the superframe

// buildSuperframe builds the frame with gopacket, full checksums, then turns
// the TCP checksum into a partial one (the pseudo-header sum, as the kernel
// leaves it) and returns the matching header and the payload.
func buildSuperframe(t testing.TB, s superSpec) (VNetHdr, []byte, []byte) {
	t.Helper()
	payload := make([]byte, s.payload)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	ls := []gopacket.SerializableLayer{}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	ls = append(ls, eth)
	ipType := layers.EthernetTypeIPv4
	if s.v6 {
		ipType = layers.EthernetTypeIPv6
	}
	l4Off := 14
	switch {
	case s.vlan && s.qinq:
		eth.EthernetType = layers.EthernetTypeQinQ
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 42, Type: ipType})
		l4Off += 8
	case s.vlan:
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 42, Type: ipType})
		l4Off += 4
	default:
		eth.EthernetType = ipType
	}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5001, Seq: superSeq, Ack: 12345, ACK: true,
		FIN: s.fin, PSH: s.psh, CWR: s.cwr, Window: 502,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 1, 0, 0, 0, 2, 0}},
		}}
	var h VNetHdr
	if s.v6 {
		ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64,
			SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip)
		l4Off += 40
		h.SetGSOType(GSOTCPv6)
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: 1000, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IPv4(10, 1, 0, 1), DstIP: net.IPv4(10, 1, 0, 2)}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip)
		l4Off += 20
		h.SetGSOType(GSOTCPv4)
	}
	if s.ecn {
		h.SetGSOType(h.GSOType() | GSOECN)
	}
	frame := serialize(t, append(ls, tcp, gopacket.Payload(payload))...)
	// Partial checksum: the folded pseudo-header sum, not complemented.
	ipOff := l4Off - 20
	addrs := frame[ipOff+12 : ipOff+20]
	if s.v6 {
		ipOff = l4Off - 40
		addrs = frame[ipOff+8 : ipOff+40]
	}
	pseudo := onesSum(addrs) + 6 + uint32(len(frame)-l4Off)
	binary.BigEndian.PutUint16(frame[l4Off+16:], foldTest(pseudo))
	h.SetFlags(FlagNeedsCsum)
	h.SetHdrLen(uint16(l4Off + 32))
	h.SetGSOSize(uint16(s.mss))
	h.SetCsumStart(uint16(l4Off))
	h.SetCsumOffset(16)
	return h, frame, payload
}

// tcpSuperframe4 is a plain IPv4 superframe for tests elsewhere.
func tcpSuperframe4(t testing.TB, payload, mss int) (VNetHdr, []byte) {
	h, f, _ := buildSuperframe(t, superSpec{payload: payload, mss: mss, psh: true})
	return h, f
}

// onesSum and foldTest are a second, plain 16-bit implementation of the
// Internet checksum, independent of sum and fold.
func onesSum(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func foldTest(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// recomputed serializes the segment's IP and TCP layers again with gopacket,
// computing checksums, and returns the IP header and TCP checksums it got.
func recomputed(t *testing.T, p gopacket.Packet) (ipCsum, tcpCsum uint16) {
	t.Helper()
	tcp := *p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{ComputeChecksums: true}
	var first gopacket.LayerType
	if ip4, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		ip := *ip4
		tcp.SetNetworkLayerForChecksum(&ip)
		if err := gopacket.SerializeLayers(buf, opts, &ip, &tcp, gopacket.Payload(tcp.Payload)); err != nil {
			t.Fatal(err)
		}
		first = layers.LayerTypeIPv4
	} else {
		ip := *p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		tcp.SetNetworkLayerForChecksum(&ip)
		if err := gopacket.SerializeLayers(buf, opts, &ip, &tcp, gopacket.Payload(tcp.Payload)); err != nil {
			t.Fatal(err)
		}
		first = layers.LayerTypeIPv6
	}
	q := gopacket.NewPacket(buf.Bytes(), first, gopacket.Default)
	if ip, ok := q.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		ipCsum = ip.Checksum
	}
	return ipCsum, q.Layer(layers.LayerTypeTCP).(*layers.TCP).Checksum
}

func TestSegmentTCP(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec superSpec
	}{
		{"ipv4", superSpec{payload: 20000, mss: 1448, psh: true}},
		{"ipv4 fin psh cwr ecn", superSpec{payload: 5000, mss: 1000, fin: true, psh: true, cwr: true, ecn: true}},
		{"ipv4 vlan", superSpec{payload: 4000, mss: 1444, vlan: true, psh: true}},
		{"ipv4 exact multiple", superSpec{payload: 4 * 1448, mss: 1448}},
		{"ipv4 one segment", superSpec{payload: 100, mss: 1448, fin: true}},
		{"ipv4 no payload", superSpec{payload: 0, mss: 1448, fin: true}},
		{"ipv4 largest", superSpec{payload: 65535 - 20 - 32, mss: 1448, psh: true}},
		{"ipv6", superSpec{v6: true, payload: 30000, mss: 1428, psh: true}},
		{"ipv6 vlan fin", superSpec{v6: true, vlan: true, payload: 3001, mss: 1000, fin: true}},
		{"ipv4 qinq", superSpec{vlan: true, qinq: true, payload: 9000, mss: 1440, psh: true}},
		{"ipv6 qinq", superSpec{v6: true, vlan: true, qinq: true, payload: 7000, mss: 1420}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr, frame, payload := buildSuperframe(t, tc.spec)
			orig := bytes.Clone(frame)
			l4Off := int(hdr.CsumStart())
			hdrLen := l4Off + 32
			var segs [][]byte
			buf := make([]byte, MaxOffloadFrameLen)
			err := softOffload(&hdr, frame, buf, func(seg []byte) error {
				segs = append(segs, bytes.Clone(seg))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(frame, orig) {
				t.Fatal("segmentation modified the superframe")
			}
			want := max(1, (tc.spec.payload+tc.spec.mss-1)/tc.spec.mss)
			if len(segs) != want {
				t.Fatalf("%d segments, want %d", len(segs), want)
			}
			var got []byte
			for i, seg := range segs {
				last := i == len(segs)-1
				p := gopacket.NewPacket(seg, layers.LayerTypeEthernet, gopacket.Default)
				if el := p.ErrorLayer(); el != nil {
					t.Fatalf("segment %d: %v", i, el.Error())
				}
				if len(seg) > hdrLen+tc.spec.mss {
					t.Errorf("segment %d: %d bytes, more than headers and mss", i, len(seg))
				}
				ipOff := l4Off - 20
				if tc.spec.v6 {
					ipOff = l4Off - 40
				}
				if !bytes.Equal(seg[:ipOff], frame[:ipOff]) {
					t.Errorf("segment %d: link header changed", i)
				}
				var vids []uint16
				for _, l := range p.Layers() {
					if tag, ok := l.(*layers.Dot1Q); ok {
						vids = append(vids, tag.VLANIdentifier)
					}
				}
				switch {
				case tc.spec.qinq && (len(vids) != 2 || vids[0] != 300 || vids[1] != 42),
					tc.spec.vlan && !tc.spec.qinq && (len(vids) != 1 || vids[0] != 42),
					!tc.spec.vlan && len(vids) != 0:
					t.Errorf("segment %d: VLAN tags %v", i, vids)
				}
				tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
				ipCsum, tcpCsum := recomputed(t, p)
				if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
					if int(ip.Length) != len(seg)-(l4Off-20) || ip.Id != uint16(1000+i) || ip.Flags != layers.IPv4DontFragment || ip.TTL != 64 {
						t.Errorf("segment %d: ip length %d id %d flags %v ttl %d", i, ip.Length, ip.Id, ip.Flags, ip.TTL)
					}
					if ip.Checksum != ipCsum || foldTest(onesSum(seg[l4Off-20:l4Off])) != 0xffff {
						t.Errorf("segment %d: ip checksum %#04x, recomputed %#04x", i, ip.Checksum, ipCsum)
					}
				} else {
					ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
					if int(ip.Length) != len(seg)-l4Off {
						t.Errorf("segment %d: ipv6 payload length %d, want %d", i, ip.Length, len(seg)-l4Off)
					}
				}
				if tcp.Checksum != tcpCsum {
					t.Errorf("segment %d: tcp checksum %#04x, recomputed %#04x", i, tcp.Checksum, tcpCsum)
				}
				if want := uint32(superSeq) + uint32(i*tc.spec.mss); tcp.Seq != want {
					t.Errorf("segment %d: seq %#x, want %#x", i, tcp.Seq, want)
				}
				if !tcp.ACK || tcp.Ack != 12345 || tcp.Window != 502 || len(tcp.Options) != 3 {
					t.Errorf("segment %d: ack %t %d window %d options %v", i, tcp.ACK, tcp.Ack, tcp.Window, tcp.Options)
				}
				if tcp.FIN != (tc.spec.fin && last) || tcp.PSH != (tc.spec.psh && last) || tcp.CWR != (tc.spec.cwr && i == 0) {
					t.Errorf("segment %d of %d: FIN %t PSH %t CWR %t", i, len(segs), tcp.FIN, tcp.PSH, tcp.CWR)
				}
				got = append(got, tcp.Payload...)
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("payload of the segments (%d bytes) differs from the superframe's (%d bytes)", len(got), len(payload))
			}
		})
	}
}

func TestCompleteChecksum(t *testing.T) {
	for _, size := range []int{0, 1, 2, 3, 7, 8, 9, 1000, 1471} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i*7 + 3)
		}
		frame := udpFrame(t, peerMAC, peerMAC, peerIP, tapIP, 53, 5353, payload)
		want := binary.BigEndian.Uint16(frame[40:])
		partial := bytes.Clone(frame)
		hdr := partialUDP(partial)
		orig := bytes.Clone(partial)
		var out []byte
		if err := softOffload(&hdr, partial, make([]byte, 2000), func(f []byte) error {
			out = bytes.Clone(f)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(partial, orig) {
			t.Errorf("size %d: the caller's frame was modified", size)
		}
		if got := binary.BigEndian.Uint16(out[40:]); got != want || !bytes.Equal(out, frame) {
			t.Errorf("size %d: checksum %#04x, gopacket's %#04x", size, got, want)
		}
	}
}

func TestSoftOffloadPassesPlainFrames(t *testing.T) {
	frame := []byte("not even a frame, but no header asks anything")
	var h VNetHdr
	var got []byte
	if err := softOffload(&h, frame, nil, func(f []byte) error { got = f; return nil }); err != nil || &got[0] != &frame[0] {
		t.Errorf("softOffload of a zero header: %v, copied %t", err, &got[0] != &frame[0])
	}
}

func TestSoftOffloadMalformed(t *testing.T) {
	hdr4, frame4, _ := buildSuperframe(t, superSpec{payload: 3000, mss: 1448})
	mutate := func(f func(h *VNetHdr, b []byte) []byte) (*VNetHdr, []byte) {
		h, b := hdr4, bytes.Clone(frame4)
		return &h, f(&h, b)
	}
	for _, tc := range []struct {
		name string
		hdr  *VNetHdr
		b    []byte
	}{
		{"truncated", nil, frame4[:40]},
		{"runt", nil, frame4[:10]},
		{"gso size 0", nil, nil},
		{"udp gso", nil, nil},
		{"ipv6 type on ipv4", nil, nil},
		{"not tcp", nil, nil},
		{"csum start elsewhere", nil, nil},
		{"data offset 4", nil, nil},
		{"checksum beyond frame", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, b := &hdr4, tc.b
			switch tc.name {
			case "gso size 0":
				h, b = mutate(func(h *VNetHdr, b []byte) []byte { h.SetGSOSize(0); return b })
			case "udp gso":
				h, b = mutate(func(h *VNetHdr, b []byte) []byte { h.SetGSOType(GSOUDPL4); return b })
			case "ipv6 type on ipv4":
				h, b = mutate(func(h *VNetHdr, b []byte) []byte { h.SetGSOType(GSOTCPv6); return b })
			case "not tcp":
				h, b = mutate(func(h *VNetHdr, b []byte) []byte { b[14+9] = 17; return b })
			case "csum start elsewhere":
				h, b = mutate(func(h *VNetHdr, b []byte) []byte { h.SetCsumStart(30); return b })
			case "data offset 4":
				h, b = mutate(func(h *VNetHdr, b []byte) []byte { b[34+12] = 0x10; return b })
			case "checksum beyond frame":
				h, b = mutate(func(h *VNetHdr, b []byte) []byte { h.SetGSOType(GSONone); h.SetCsumOffset(5000); return b })
			}
			emitted := 0
			err := softOffload(h, b, make([]byte, MaxOffloadFrameLen), func([]byte) error { emitted++; return nil })
			if !errors.Is(err, errMalformed) || emitted != 0 {
				t.Errorf("softOffload = %v after %d frames, want errMalformed and none", err, emitted)
			}
		})
	}
}

func TestSegmentBufferTooSmall(t *testing.T) {
	hdr, frame, _ := buildSuperframe(t, superSpec{payload: 3000, mss: 1448})
	err := softOffload(&hdr, frame, make([]byte, 1000), func([]byte) error { return nil })
	if !errors.Is(err, errMalformed) {
		t.Errorf("segmenting into a short buffer = %v, want errMalformed", err)
	}
}

func FuzzSoftOffload(f *testing.F) {
	hdr, frame, _ := buildSuperframe(f, superSpec{payload: 3000, mss: 1448, fin: true})
	f.Add(hdr[:], frame)
	hdr6, frame6, _ := buildSuperframe(f, superSpec{v6: true, vlan: true, payload: 2000, mss: 500})
	f.Add(hdr6[:], frame6)
	f.Fuzz(func(t *testing.T, h, frame []byte) {
		var hdr VNetHdr
		copy(hdr[:], h)
		buf := make([]byte, 4000)
		orig := bytes.Clone(frame)
		_ = softOffload(&hdr, frame, buf, func(seg []byte) error {
			if len(seg) > len(buf) && &seg[0] != &frame[0] {
				t.Fatalf("segment of %d bytes from a %d-byte buffer", len(seg), len(buf))
			}
			return nil
		})
		if !bytes.Equal(frame, orig) {
			t.Fatal("softOffload modified its input")
		}
	})
}

func BenchmarkSegmentTCP(b *testing.B) {
	hdr, frame, _ := buildSuperframe(b, superSpec{payload: 64000, mss: 1448, psh: true})
	buf := make([]byte, MaxOffloadFrameLen)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := softOffload(&hdr, frame, buf, func([]byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
