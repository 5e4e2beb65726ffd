// Package frag splits one Ethernet frame into tunnel-sized chunks and
// reassembles the chunks on the far side with bounded memory and time.
//
// A frame may be a GSO superframe of up to 64 KiB, optionally preceded by a
// 10-byte opaque offload header (a virtio-net header) that travels with it so
// the far TAP can segment it or pass it on with its checksum state intact.
// Both together are called the stream.
//
// # Wire format
//
// All fields are big-endian.
//
//	byte 0      version<<4 | flags          version 1
//	            flags 0x1 FRAG              a fragment; the long header follows
//	            flags 0x2 OFFLOAD           the stream starts with the 10-byte offload header
//	            flags 0x4, 0x8              reserved, must be zero
//	byte 1      type                        0 = Ethernet frame, 1 = the tunnel's probe,
//	                                        2 = packed frames (below); others are reserved
//
// A stream that fits one chunk goes whole, behind the 2-byte header alone:
//
//	[ver|flags][type] stream...
//
// A longer stream goes in fragments, each behind a 12-byte header:
//
//	[ver|flags][type][frame ID uint32][offset uint24][total uint24] stream[offset:offset+len]
//
// total is the length of the whole stream, offload header included. The
// stream is divided evenly among as few fragments as the caller's chunk size
// allows, their payloads one byte apart at most (the longer first), so that
// after WireGuard's padding to 16 bytes datagrams of one size follow each
// other, within a frame and into the next of its length, and UDP GSO/GRO
// can coalesce them. The receiver does not rely on it and tracks byte
// ranges instead.
//
// Several whole frames for one peer may share a chunk (pack.go), each
// behind a 2-byte word, its stream's length in the low 15 bits and the
// OFFLOAD flag in the top bit:
//
//	[ver|0][2] [len|offload<<15] stream... [len|offload<<15] stream...
//
// A receiver before packing counts such a chunk as of unknown type and
// drops it: a sender packs only for a peer that has said it unpacks (the
// tunnel says so in its label header, outside this package).
//
// # Why our own fragmentation
//
// A full Ethernet frame (1514 bytes, 1518 tagged) does not fit a 1420-byte
// WireGuard tunnel, and a superframe fits nothing. Outer IP fragmentation is
// what breaks in the field: ICMP "fragmentation needed" is filtered, routers
// and middleboxes drop fragments, and IPv4's 16-bit identification wraps in
// well under a second at gigabit rates, so that fragments of different
// packets can be glued together (RFC 6864, RFC 4963). Chunks are therefore
// sized by the caller to fit the tunnel, never fragmented by IP, and carry a
// 32-bit frame ID: at a million fragmented frames per second it wraps after
// more than an hour, far beyond the reassembly timeout. A frame that fits
// goes whole with two bytes of overhead and no frame ID at all.
//
// # Decisions
//
//   - Fragments carry the stream's total length rather than a last-fragment
//     flag: whichever fragment arrives first sizes the buffer exactly, and a
//     frame is complete when all total bytes have arrived, in any order.
//   - The splitter refuses (returns no chunk) what the reassembler would drop:
//     frames shorter than MinFrameLen or longer than MaxFrameLen, and frames
//     that need fragments when maxChunk is below MinChunk. A caller that loops
//     on Chunks.Next until it returns 0 then simply sends nothing.
//   - Non-final fragments must carry at least MinFragmentPayload bytes, and a
//     frame may have at most 64 disjoint received byte ranges at a time, so a
//     peer cannot make the receiver do much work or bookkeeping per byte.
//   - Held memory is accounted by buffer capacity plus the fixed bookkeeping
//     of each frame in progress (see AccountedBytes), so BytesHeld is what the
//     reassembly really pins. Buffers come from size classes between 1 KiB and
//     MaxStreamLen, at most 1.5 times the stream they hold above 1 KiB.
//   - When a new frame would push a peer over its cap, that peer's frames that
//     have gone longest without receiving a chunk are evicted first. A peer
//     flooding first fragments that never complete thus evicts its own flood:
//     a genuine frame survives as long as it keeps receiving chunks faster than
//     the flood fills the peer's cap. When the total cap is hit, frames are
//     evicted the same way from the peer holding the most bytes.
//   - The timeout counts from a frame's first chunk, so a slow drip of chunks
//     cannot hold memory for longer than Config.Timeout.
//   - Whole chunks carry no ID, so they cannot be deduplicated here; WireGuard's
//     replay window already drops duplicated packets. For the same reason a
//     duplicate fragment that arrives after its frame completed starts a new
//     frame, which later times out.
//   - The reassembler is split into shards by peer, each with its own lock, so
//     peers are reassembled in parallel. Whole chunks take no lock at all.
//
// Nothing here starts a goroutine or reads the clock: the caller passes the
// time to Reassembler.Add and Reassembler.Expire.
package frag
