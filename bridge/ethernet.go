package bridge

import "encoding/binary"

// EthernetHeaderLen is the length of an untagged Ethernet II header:
// destination, source, EtherType. Frames shorter than this are runts.
const EthernetHeaderLen = 14

// Ethernet is a view of an Ethernet frame from the destination address on,
// without FCS, as gVisor's header.Ethernet. Its accessors allocate nothing and
// expect at least EthernetHeaderLen bytes; they panic on a shorter view, so
// check the length first.
type Ethernet []byte

// Dst returns the destination address.
func (e Ethernet) Dst() MAC { return MAC(e[0:6]) }

// Src returns the source address.
func (e Ethernet) Src() MAC { return MAC(e[6:12]) }

// EtherType returns the outer EtherType (or 802.3 length): 0x8100 for an
// 802.1Q-tagged frame, whose inner type follows the tag.
func (e Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(e[12:14]) }

// Dst returns the destination address of the Ethernet frame f.
func Dst(f []byte) MAC { return Ethernet(f).Dst() }

// Src returns the source address of the Ethernet frame f.
func Src(f []byte) MAC { return Ethernet(f).Src() }

// EtherType returns the outer EtherType of the Ethernet frame f.
func EtherType(f []byte) uint16 { return Ethernet(f).EtherType() }
