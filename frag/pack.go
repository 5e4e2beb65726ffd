package frag

import "encoding/binary"

// Packing: several whole frames for one peer in one chunk, so that a burst
// of small frames costs one tunnel packet per chunk instead of one per
// frame. A packed chunk is of type TypePacked, with no flags at its head;
// each frame follows behind a 2-byte big-endian entry header, the
// stream's length in its low 15 bits and, in the top bit, whether the
// stream starts with the offload header:
//
//	[ver|0][TypePacked] [len|offload<<15] stream... [len|offload<<15] stream...
//
// A chunk is dropped whole, and counted malformed, when an entry runs past
// its end, when a stream is shorter than a frame (MinFrameLen, after the
// offload header), when it holds no frame or more than MaxPackedFrames, or
// when bytes too few for an entry header are left at the end. Frames are
// delivered in place (no copy), in order.
//
// Older nodes count a packed chunk as of unknown type and drop it, so a
// sender packs only for a peer that has said it unpacks (the tunnel carries
// that in its own header).
const (
	TypePacked      = 2  // frames packed behind entry headers (1 is the tunnel's probe)
	PackedHeaderLen = 2  // ver|flags and type, as any chunk
	PackEntryLen    = 2  // the length word in front of each stream
	MaxPackedFrames = 64 // the most frames one packed chunk may hold

	packOffloadBit = 0x8000
	maxPackedLen   = 0x7fff
)

// PackedLen returns the bytes a frame with offload (nil or zero: none)
// takes in a packed chunk: entry header and stream.
func PackedLen(offload *[OffloadLen]byte, frame []byte) int {
	n := PackEntryLen + len(frame)
	if offload != nil && *offload != ([OffloadLen]byte{}) {
		n += OffloadLen
	}
	return n
}

// Packer writes a packed chunk into the buffer given to NewPacker. It is a
// value and allocates nothing.
type Packer struct {
	dst    []byte
	n      int
	frames int
}

// NewPacker starts a packed chunk in dst, whose length is the largest chunk
// the caller sends (it must hold at least PackedHeaderLen bytes).
func NewPacker(dst []byte) Packer {
	dst[0] = Version << 4
	dst[1] = TypePacked
	return Packer{dst: dst, n: PackedHeaderLen}
}

// Add appends a frame and reports true, or reports false and leaves the
// chunk as it was when the frame does not fit the buffer, the chunk holds
// MaxPackedFrames already, or the frame is shorter than MinFrameLen.
func (p *Packer) Add(offload *[OffloadLen]byte, frame []byte) bool {
	need := PackedLen(offload, frame)
	stream := need - PackEntryLen
	if p.frames >= MaxPackedFrames || p.n+need > len(p.dst) || len(frame) < MinFrameLen || stream > maxPackedLen {
		return false
	}
	word := uint16(stream)
	b := p.dst[p.n+PackEntryLen : p.n+need]
	if stream > len(frame) {
		word |= packOffloadBit
		b = b[copy(b, offload[:]):]
	}
	copy(b, frame)
	binary.BigEndian.PutUint16(p.dst[p.n:], word)
	p.n += need
	p.frames++
	return true
}

// Len returns the length of the chunk so far.
func (p *Packer) Len() int { return p.n }

// Frames returns the number of frames in the chunk.
func (p *Packer) Frames() int { return p.frames }

// IsPacked reports whether chunk is a packed chunk (to be opened with
// Reassembler.Unpack rather than Add).
func IsPacked(chunk []byte) bool { return len(chunk) >= PackedHeaderLen && chunk[1] == TypePacked }

// Packed iterates over the frames of a packed chunk that Unpack checked.
type Packed struct {
	rest []byte
}

// Next returns the next frame, aliasing the chunk, or false when none is
// left. The frames need no Release.
func (p *Packed) Next() (Frame, bool) {
	if len(p.rest) < PackEntryLen {
		return Frame{}, false
	}
	word := binary.BigEndian.Uint16(p.rest)
	n := int(word &^ packOffloadBit)
	stream := p.rest[PackEntryLen : PackEntryLen+n]
	p.rest = p.rest[PackEntryLen+n:]
	var f Frame
	if word&packOffloadBit != 0 {
		copy(f.Offload[:], stream)
		stream = stream[OffloadLen:]
	}
	f.Data = stream
	return f, true
}

// parsePacked checks a packed chunk and returns its frames' iterator and
// their number, or 0 when it is malformed.
func parsePacked(chunk []byte) (Packed, int) {
	if len(chunk) < PackedHeaderLen || chunk[0] != Version<<4 || chunk[1] != TypePacked {
		return Packed{}, 0
	}
	body := chunk[PackedHeaderLen:]
	frames := 0
	for rest := body; len(rest) > 0; frames++ {
		if len(rest) < PackEntryLen || frames == MaxPackedFrames {
			return Packed{}, 0
		}
		word := binary.BigEndian.Uint16(rest)
		n := int(word &^ packOffloadBit)
		least := MinFrameLen
		if word&packOffloadBit != 0 {
			least += OffloadLen
		}
		if n < least || PackEntryLen+n > len(rest) {
			return Packed{}, 0
		}
		rest = rest[PackEntryLen+n:]
	}
	if frames == 0 {
		return Packed{}, 0
	}
	return Packed{rest: body}, frames
}

// Unpack checks a packed chunk from peer (see IsPacked) and returns an
// iterator over its frames. A malformed chunk is dropped whole and counted
// (Stats.Malformed); Unpack never panics and allocates nothing.
func (r *Reassembler) Unpack(peer uint32, chunk []byte) (Packed, bool) {
	s := r.shardOf(peer)
	p, n := parsePacked(chunk)
	if n == 0 {
		s.c.malformed.Add(1)
		return Packed{}, false
	}
	s.c.packed.Add(1)
	s.c.packedFrames.Add(uint64(n))
	return p, true
}
