package mesh

import "encoding/binary"

// Control frames carry the machine's messages (records, summaries,
// requests) over a link, and the mesh port's own notices, in the shape of
// an Ethernet frame to an IEEE 802.1D reserved group address:
//
//	| ControlAddress 6 | 02:6d + ingress node ID 6 | 0x88b5 2 | kind 1 | message...
//
// Why that shape: a node configured with a spanning tree ("rstp", "stp")
// among shortest-path neighbours reads whatever comes in on a peering as an
// Ethernet frame. A data header (0x10/0x11 ...) reads as a unicast or
// multicast frame that its switch would flood to its VMs. A frame to a
// reserved group address is a control frame for every switch (l2wg's of any
// version, and the Linux bridge): it is never forwarded as data, and no VM
// can make a switch forward one, so no such frame crosses a peering unless
// a mesh port wrote it. Its arrival on a peering is proof that the peer
// speaks the mesh; a BPDU's arrival (01:80:C2:00:00:00) is proof that it
// runs a spanning tree. Both start with 0x01, which no data header does, so
// the data path tells them apart from data by one byte. The source address
// is a locally administered unicast one that names the sender, so that no
// switch drops the frame for its source. The 15 bytes cost nothing on the
// data path: only control messages carry them.

// ControlAddress is the destination of control frames: 01:80:C2:00:00:0F,
// the last of the 802.1D reserved group addresses (reserved for future
// standardisation; these frames never leave a tunnel between two l2wg
// nodes).
var ControlAddress = [6]byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0f}

// ControlHeaderLen is the length of a control frame's header.
const ControlHeaderLen = 15

// controlEtherType is IEEE 802's local experimental EtherType 1.
const controlEtherType = 0x88b5

// ControlKind says what a control frame carries.
type ControlKind uint8

const (
	// ControlMessage: a message for Machine.Receive.
	ControlMessage ControlKind = 0
	// ControlMismatch: the sender speaks the mesh and heard a spanning
	// tree's BPDUs from this node: a notice for a node that does not speak
	// the mesh, so that it too sees the mismatch; no payload.
	ControlMismatch ControlKind = 1
)

// FirstByte is the first byte of every control frame and of every BPDU
// (01:80:C2...), and of no data header.
const FirstByte = 0x01

// PutControlHeader writes a control frame's header into b[:ControlHeaderLen].
func PutControlHeader(b []byte, self NodeID, kind ControlKind) {
	_ = b[ControlHeaderLen-1]
	copy(b, ControlAddress[:])
	b[6], b[7] = 0x02, 0x6d
	binary.BigEndian.PutUint32(b[8:], uint32(self))
	binary.BigEndian.PutUint16(b[12:], controlEtherType)
	b[14] = byte(kind)
}

// IsControlFrame reports whether b is addressed as a control frame.
func IsControlFrame(b []byte) bool {
	return len(b) >= 6 && [6]byte(b[:6]) == ControlAddress
}

// DecodeControl reads a control frame: the sender's node ID, the kind and
// the message (a view of b). It never allocates.
func DecodeControl(b []byte) (from NodeID, kind ControlKind, msg []byte, err error) {
	if len(b) < ControlHeaderLen || !IsControlFrame(b) || b[6] != 0x02 || b[7] != 0x6d ||
		binary.BigEndian.Uint16(b[12:]) != controlEtherType || b[14] > byte(ControlMismatch) {
		return 0, 0, nil, ErrControlFrame
	}
	from = NodeID(binary.BigEndian.Uint32(b[8:]))
	if from == 0 {
		return 0, 0, nil, ErrControlFrame
	}
	return from, ControlKind(b[14]), b[ControlHeaderLen:], nil
}
