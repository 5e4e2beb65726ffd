package stp

import "fmt"

// BridgeID identifies a bridge: the bridge priority in the top 16 bits and
// the bridge's MAC address in the low 48, exactly the 8 bytes of the wire
// format read as a big-endian integer. Comparing two IDs as integers is the
// 802.1D ordering: the lower ID is the better one.
type BridgeID uint64

// NewBridgeID returns the bridge ID made of priority and mac.
func NewBridgeID(priority uint16, mac [6]byte) BridgeID {
	id := BridgeID(priority) << 48
	for i, b := range mac {
		id |= BridgeID(b) << (8 * (5 - i))
	}
	return id
}

// Priority returns the bridge priority, the top 16 bits.
func (id BridgeID) Priority() uint16 { return uint16(id >> 48) }

// MAC returns the bridge address, the low 48 bits.
func (id BridgeID) MAC() [6]byte {
	var mac [6]byte
	for i := range mac {
		mac[i] = byte(id >> (8 * (5 - i)))
	}
	return mac
}

// String formats the ID as the Linux bridge does: priority and address in
// hex, "8000.0200000000aa".
func (id BridgeID) String() string {
	return fmt.Sprintf("%04x.%012x", id.Priority(), uint64(id)&(1<<48-1))
}

// PortNo numbers a port within one bridge. Valid numbers are 1 to MaxPortNo;
// 0 means "no port" (a root bridge has no root port).
type PortNo uint16

// MaxPortNo is the largest port number: 802.1D-2004 gives the port number
// the low 12 bits of the port ID.
const MaxPortNo PortNo = 0x0FFF

// PortID identifies a port in BPDUs: the port priority and the port number.
//
// The layout follows 802.1D-2004 clause 9.2.7: priority in the top 4 bits
// (priorities 0 to 240 in steps of 16, default 128) and the port number in the
// low 12. Linux's br_make_port_id uses 6 priority bits and a 10-bit port
// number instead (priorities 0 to 63, default 32); both give 0x8000|no for the
// default priority, so default port IDs are identical on the wire and a
// priority p here orders like p/4 on a Linux bridge. Port IDs only break
// ties between ports of one bridge, so the two layouts interoperate.
type PortID uint16

// NewPortID returns the ID of port no with the given priority. The low 4
// bits of priority are dropped (802.1D-2004 steps of 16).
func NewPortID(priority uint8, no PortNo) PortID {
	return PortID(uint16(priority&0xF0)<<8 | uint16(no&MaxPortNo))
}

// Priority returns the port priority (0 to 240, a multiple of 16).
func (id PortID) Priority() uint8 { return uint8(id>>8) & 0xF0 }

// No returns the port number.
func (id PortID) No() PortNo { return PortNo(id) & MaxPortNo }

// String formats the ID in hex as the Linux bridge does, "8001".
func (id PortID) String() string { return fmt.Sprintf("%04x", uint16(id)) }

// addCost adds two path costs, saturating instead of wrapping: a peer that
// announces a huge cost must not come out as the cheapest path.
func addCost(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint32(0)
}
