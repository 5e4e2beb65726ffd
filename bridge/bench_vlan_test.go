package bridge

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// fullTaggedFrame returns a 1518-byte 802.1Q frame of VLAN vid from src to
// dst.
func fullTaggedFrame(tb testing.TB, src, dst MAC, vid uint16) []byte {
	eth := &layers.Ethernet{SrcMAC: hw(src), DstMAC: hw(dst), EthernetType: layers.EthernetTypeDot1Q}
	tag := &layers.Dot1Q{VLANIdentifier: vid, Type: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 0, 0, src[5]), DstIP: net.IPv4(10, 0, 0, dst[5])}
	udp := &layers.UDP{SrcPort: 4789, DstPort: 4789}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return serialize(tb, eth, tag, ip, udp, gopacket.Payload(make([]byte, 1472)))
}

// BenchmarkForwardUnicastTagged is BenchmarkForwardUnicast with 1518-byte
// frames of VLAN 100, the destination learned in VLAN 100.
func BenchmarkForwardUnicastTagged(b *testing.B) {
	br, ids, ports := benchBridge(b, 4)
	br.Input(ids[1], []Frame{{Data: fullTaggedFrame(b, host(1), host(9), 100)}})
	frames := batchOf(benchBatch, fullTaggedFrame(b, host(3), host(1), 100))
	b.SetBytes(int64(benchBatch * len(frames[0].Data)))
	b.ReportAllocs()
	astray := ports[2].frames.Load()
	for b.Loop() {
		br.Input(ids[0], frames)
	}
	reportPerFrame(b)
	if ports[1].frames.Load() < uint64(b.N*benchBatch) || ports[2].frames.Load() != astray {
		b.Fatalf("frames went astray")
	}
}

// BenchmarkForwardUnicastVLANFiltered is BenchmarkForwardUnicastTagged with a
// VLAN filter on every port (VLANs 100-199 and 300): the ingress and the
// egress filter are read for every frame.
func BenchmarkForwardUnicastVLANFiltered(b *testing.B) {
	br, ids, ports := benchBridge(b, 4)
	vids, err := ParseVIDSet("100-199,300")
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range ids {
		br.SetVLANFilter(id, VLANFilter{VIDs: vids})
	}
	br.Input(ids[1], []Frame{{Data: fullTaggedFrame(b, host(1), host(9), 100)}})
	frames := batchOf(benchBatch, fullTaggedFrame(b, host(3), host(1), 100))
	b.SetBytes(int64(benchBatch * len(frames[0].Data)))
	b.ReportAllocs()
	for b.Loop() {
		br.Input(ids[0], frames)
	}
	reportPerFrame(b)
	if ports[1].frames.Load() < uint64(b.N*benchBatch) {
		b.Fatalf("frames went astray")
	}
}

// BenchmarkFloodVLANFiltered floods batches of 64 broadcast frames of VLAN 100
// to 3 ports, one of which does not carry VLAN 100: each port gets its own
// list.
func BenchmarkFloodVLANFiltered(b *testing.B) {
	br, ids, ports := benchBridge(b, 4)
	var other VIDSet
	other.Add(200)
	br.SetVLANFilter(ids[3], VLANFilter{VIDs: other})
	frames := batchOf(benchBatch, arpRequest(b, host(3), 100))
	b.SetBytes(int64(benchBatch * len(frames[0].Data)))
	b.ReportAllocs()
	astray := ports[3].frames.Load()
	for b.Loop() {
		br.Input(ids[0], frames)
	}
	reportPerFrame(b)
	if ports[2].frames.Load() < uint64(b.N*benchBatch) || ports[3].frames.Load() != astray {
		b.Fatalf("frames went astray")
	}
}
