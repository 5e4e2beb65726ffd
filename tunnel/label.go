package tunnel

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
)

// Label is a node's IPv4 routing label inside the tunnel.
type Label [4]byte

// LabelOf derives the label of the node with the given WireGuard public key.
func LabelOf(publicKey [32]byte) Label {
	h := sha256.New()
	h.Write([]byte("l2wg label v1\x00"))
	h.Write(publicKey[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return Label(sum[:4])
}

// Addr returns the label as an IPv4 address, as wireguard-go's allowed IPs see it.
func (l Label) Addr() netip.Addr { return netip.AddrFrom4(l) }

func (l Label) String() string { return l.Addr().String() }

func (l Label) key() uint32 { return binary.BigEndian.Uint32(l[:]) }

const (
	labelHeaderLen = 20
	// labelProto is the IPv4 protocol number in label headers: 253, reserved
	// for experimentation (RFC 3692). No kernel ever sees these packets.
	labelProto = 253
	// labelUnpacksFlag, in the label header's type-of-service byte, says
	// that the sender unpacks packed chunks (frag.TypePacked): a node
	// packs frames for a peer only while the peer's packets carry it.
	// Older nodes send 0 there and ignore the byte, so they never get a
	// packed chunk (which they would drop as of unknown type).
	labelUnpacksFlag = 0x04
)

// putLabelHeader writes an IPv4 label header for a packet of total bytes.
func putLabelHeader(b []byte, src, dst Label, total int) {
	_ = b[labelHeaderLen-1]
	b[0] = 0x45 // version 4, header length 5 words
	b[1] = labelUnpacksFlag
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	b[4], b[5], b[6], b[7] = 0, 0, 0, 0
	b[8] = 64
	b[9] = labelProto
	b[10], b[11] = 0, 0
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
}

// parseLabelHeader returns the source label and the chunk behind a label
// header. wireguard-go has already checked the version, truncated the packet
// to its total length and matched the source against the sending peer.
func parseLabelHeader(p []byte) (src Label, chunk []byte, ok bool) {
	if len(p) < labelHeaderLen || p[0] != 0x45 || p[9] != labelProto {
		return src, nil, false
	}
	total := int(binary.BigEndian.Uint16(p[2:]))
	if total < labelHeaderLen || total > len(p) {
		return src, nil, false
	}
	copy(src[:], p[12:16])
	return src, p[labelHeaderLen:total], true
}

// labelUnpacks reports whether a label header's sender unpacks packed
// chunks; p holds a header parseLabelHeader accepted.
func labelUnpacks(p []byte) bool { return p[1]&labelUnpacksFlag != 0 }
