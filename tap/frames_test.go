package tap

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	peerMAC  = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x03}
	tapIP    = net.IPv4(10, 77, 0, 1).To4()
	peerIP   = net.IPv4(10, 77, 0, 3).To4()
	staticIP = net.IPv4(10, 77, 0, 2).To4()
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// udpFrame builds an Ethernet/IPv4/UDP frame with a correct checksum.
func udpFrame(t testing.TB, dst, src net.HardwareAddr, srcIP, dstIP net.IP, sport, dport int, payload []byte) []byte {
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: srcIP, DstIP: dstIP}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, udp, gopacket.Payload(payload))
}

// partialUDP turns the checksum of udpFrame's frame into a partial one, as a
// kernel with checksum offload hands it over, and returns the header for it.
func partialUDP(frame []byte) VNetHdr {
	const ipOff, l4Off = 14, 34
	udpLen := binary.BigEndian.Uint16(frame[l4Off+4:]) // gopacket pads the frame to 60 bytes
	pseudo := sum(0, frame[ipOff+12:ipOff+20]) + 17 + uint64(udpLen)
	binary.BigEndian.PutUint16(frame[l4Off+6:], fold(pseudo))
	var h VNetHdr
	h.SetFlags(FlagNeedsCsum)
	h.SetCsumStart(l4Off)
	h.SetCsumOffset(6)
	return h
}
