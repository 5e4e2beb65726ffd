package frag

// Protocol constants. The wire format is described in the package doc.
const (
	Version        = 1  // protocol version in the high nibble of byte 0
	WholeHeaderLen = 2  // header of a chunk that carries a whole stream
	FragHeaderLen  = 12 // header of a fragment
	OffloadLen     = 10 // opaque offload (virtio-net) header carried before the frame

	MinFrameLen = 14 // an Ethernet header
	// MaxEthernetLen is the longest frame a TAP gives or takes: a 64 KiB
	// superframe behind a tagged Ethernet header.
	MaxEthernetLen = 65535 + 18
	// MaxEncapLen is the room a frame has for a header its switch puts in
	// front of it (the shortest-path mesh's data header, bridge/mesh), so
	// that the longest superframe still crosses with one.
	MaxEncapLen  = 16
	MaxFrameLen  = MaxEthernetLen + MaxEncapLen // the longest frame carried
	MaxStreamLen = OffloadLen + MaxFrameLen     // offload header and frame

	// MinFragmentPayload is the least payload a fragment other than the last
	// may carry; smaller ones are dropped as malformed.
	MinFragmentPayload = 64
	// MinChunk is the least maxChunk with which a stream can be fragmented.
	MinChunk = FragHeaderLen + MinFragmentPayload
)

// Flags in the low nibble of byte 0.
const (
	FlagFrag    = 0x1 // the chunk is a fragment and the long header follows
	FlagOffload = 0x2 // the stream starts with the OffloadLen-byte offload header

	flagsReserved = 0xc // must be zero
)

// Types in byte 1.
const (
	TypeEthernet = 0 // an Ethernet frame; other types are reserved for control messages
)

// fragHeader is the parsed long header of a fragment.
type fragHeader struct {
	flags  byte
	id     uint32
	offset int
	total  int
}

func putWholeHeader(b []byte, flags byte) {
	b[0] = Version<<4 | flags
	b[1] = TypeEthernet
}

func putFragHeader(b []byte, flags byte, id uint32, offset, total int) {
	_ = b[FragHeaderLen-1]
	b[0] = Version<<4 | flags
	b[1] = TypeEthernet
	b[2] = byte(id >> 24)
	b[3] = byte(id >> 16)
	b[4] = byte(id >> 8)
	b[5] = byte(id)
	b[6] = byte(offset >> 16)
	b[7] = byte(offset >> 8)
	b[8] = byte(offset)
	b[9] = byte(total >> 16)
	b[10] = byte(total >> 8)
	b[11] = byte(total)
}

// parseFragHeader reads the long header; b holds at least FragHeaderLen bytes.
func parseFragHeader(b []byte) fragHeader {
	_ = b[FragHeaderLen-1]
	return fragHeader{
		flags:  b[0] & 0x0f,
		id:     uint32(b[2])<<24 | uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5]),
		offset: int(b[6])<<16 | int(b[7])<<8 | int(b[8]),
		total:  int(b[9])<<16 | int(b[10])<<8 | int(b[11]),
	}
}

// minStream is the shortest valid stream for the given flags.
func minStream(flags byte) int {
	if flags&FlagOffload != 0 {
		return OffloadLen + MinFrameLen
	}
	return MinFrameLen
}

// dropReason names why a chunk is dropped before it reaches the tables.
type dropReason uint8

const (
	keep dropReason = iota
	dropMalformed
	dropTooBig
)

// check validates a fragment header against its payload length n.
func (h fragHeader) check(n int) dropReason {
	end := h.offset + n
	switch {
	case h.total > MaxStreamLen:
		return dropTooBig
	case h.total < minStream(h.flags),
		n == 0,
		end > h.total,
		end < h.total && n < MinFragmentPayload:
		return dropMalformed
	}
	return keep
}
