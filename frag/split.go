package frag

import (
	"math/rand/v2"
	"sync/atomic"
)

// Splitter hands out frame IDs to the frames it fragments: an atomic counter
// that starts at a random value, so that IDs of a restarted sender do not
// meet the stale frames of its previous life. It is safe for concurrent use.
type Splitter struct {
	next atomic.Uint32
}

// NewSplitter returns a Splitter whose IDs start at a random value.
func NewSplitter() *Splitter {
	s := new(Splitter)
	s.next.Store(rand.Uint32())
	return s
}

// Split prepares the chunks of one frame. maxChunk is the largest chunk in
// bytes including its frag header (the caller has already subtracted its own
// outer headers). offload nil or all zero means no offload header is carried;
// otherwise it is copied, and the caller may reuse it at once.
//
// A frame whose stream fits in maxChunk-WholeHeaderLen goes whole in one
// chunk. Longer ones go in as few fragments as maxChunk allows, whose
// payloads differ by one byte at most, the longer first (a 1514-byte frame
// in a 1400-byte chunk goes as two of about 770 bytes, not 1400 and 136). Split
// returns no chunk (Count() == 0) for a frame shorter than MinFrameLen or
// longer than MaxFrameLen, and for one that needs fragments while maxChunk is
// below MinChunk: the far side would drop them.
//
// The returned Chunks holds frame, not a copy: it is valid as long as frame
// is. Split allocates nothing and takes a frame ID only when it fragments.
func (s *Splitter) Split(offload *[OffloadLen]byte, frame []byte, maxChunk int) Chunks {
	if len(frame) < MinFrameLen || len(frame) > MaxFrameLen {
		return Chunks{}
	}
	c := Chunks{frame: frame}
	if offload != nil && *offload != ([OffloadLen]byte{}) {
		c.offload = *offload
		c.flags = FlagOffload
		c.offloadLen = OffloadLen
	}
	c.total = c.offloadLen + len(frame)
	if c.total <= maxChunk-WholeHeaderLen {
		c.count, c.left = 1, 1
		return c
	}
	if maxChunk < MinChunk {
		return Chunks{}
	}
	c.flags |= FlagFrag
	// As few fragments as the chunk size allows, their payloads one byte
	// apart at most, the longer ones first: wireguard-go's UDP GSO and the
	// kernel's GRO coalesce runs of equal-size datagrams (the last of a run
	// may be shorter), and WireGuard pads every packet to a multiple of 16
	// bytes (at most to its MTU). So the datagrams of a frame are all of one
	// size on the wire unless its two payload sizes straddle a padding
	// step, and a run goes on into the next frame of that length: a
	// superframe of a TCP stream and the next one go in the same sends. A
	// short tail fragment would end every run at its frame (the mesh's
	// 10-byte header makes a 65,236-byte stream 48 fragments; a 1326-byte
	// tail after 47 of 1360 cost a second GSO send per superframe).
	largest := maxChunk - FragHeaderLen
	count := (c.total + largest - 1) / largest
	c.per = c.total / count
	c.long = c.total % count
	if c.per < MinFragmentPayload {
		// Only with chunks near MinChunk: full fragments of the least
		// payload, and a shorter last one.
		c.per, c.long = MinFragmentPayload, 0
		count = (c.total + c.per - 1) / c.per
	}
	c.count = count
	c.left = c.count
	c.id = s.next.Add(1)
	return c
}

// Chunks is an iterator over the chunks of one frame, from Splitter.Split.
// It is a value: copies iterate independently. It holds the caller's frame.
type Chunks struct {
	frame      []byte
	offload    [OffloadLen]byte
	offloadLen int  // OffloadLen when the offload header is carried, else 0
	flags      byte // FlagFrag, FlagOffload
	id         uint32
	total      int // stream length: offload header and frame
	per        int // payload of a fragment; per+1 for the first long ones
	long       int // fragments, first, that carry per+1 bytes
	pos        int // stream offset of the next fragment
	count      int
	left       int
}

// Next writes the next chunk, header and payload, to the start of dst and
// returns its length, or returns 0 when no chunk is left. dst must hold the
// maxChunk bytes given to Split (a shorter one panics).
func (c *Chunks) Next(dst []byte) int {
	if c.left == 0 {
		return 0
	}
	if c.flags&FlagFrag == 0 {
		n := WholeHeaderLen + c.total
		dst = dst[:n]
		putWholeHeader(dst, c.flags)
		c.copyStream(dst[WholeHeaderLen:], 0, c.total)
		c.left = 0
		return n
	}
	per := c.per
	if c.count-c.left < c.long {
		per++
	}
	end := min(c.pos+per, c.total)
	n := FragHeaderLen + end - c.pos
	dst = dst[:n]
	putFragHeader(dst, c.flags, c.id, c.pos, c.total)
	c.copyStream(dst[FragHeaderLen:], c.pos, end)
	c.pos = end
	c.left--
	return n
}

// copyStream copies stream[lo:hi] to dst; the stream is the offload header
// (when carried) followed by the frame.
func (c *Chunks) copyStream(dst []byte, lo, hi int) {
	if lo < c.offloadLen {
		n := copy(dst, c.offload[lo:min(hi, c.offloadLen)])
		dst = dst[n:]
		lo += n
	}
	if lo < hi {
		copy(dst, c.frame[lo-c.offloadLen:hi-c.offloadLen])
	}
}

// Remaining returns the number of chunks not yet written.
func (c *Chunks) Remaining() int { return c.left }

// Count returns the number of chunks of this frame: 0 when Split refused it,
// 1 when it goes whole.
func (c Chunks) Count() int { return c.count }

// Fragmented reports whether the frame goes in fragments.
func (c Chunks) Fragmented() bool { return c.flags&FlagFrag != 0 }

// ID returns the frame ID the fragments carry (0 for a whole frame).
func (c Chunks) ID() uint32 { return c.id }
