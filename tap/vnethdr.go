package tap

import "encoding/binary"

// VNetHdrLen is the length of the legacy struct virtio_net_hdr that precedes
// every frame on a TAP opened with IFF_VNET_HDR.
const VNetHdrLen = 10

// VNetHdr is a struct virtio_net_hdr (legacy layout, without num_buffers):
//
//	offset 0  flags        uint8   FlagNeedsCsum, FlagDataValid
//	offset 1  gso_type     uint8   GSONone, GSOTCPv4, GSOTCPv6, ... | GSOECN
//	offset 2  hdr_len      uint16  a hint: bytes of headers (the kernel sends its linear length)
//	offset 4  gso_size     uint16  payload bytes per segment (the MSS)
//	offset 6  csum_start   uint16  where checksumming starts, from the Ethernet header
//	offset 8  csum_offset  uint16  where the checksum goes, from csum_start
//
// The 16-bit fields are little endian on every host: Open sets TUNSETVNETLE,
// so a header read on one machine means the same on a peer of the other byte
// order (the header crosses the tunnel with its superframe). The zero value
// is the header of an ordinary frame: checksums complete, no segmentation.
//
// The accessors allocate nothing.
type VNetHdr [VNetHdrLen]byte

// Flags of a VNetHdr.
const (
	// FlagNeedsCsum: the checksum is partial. The field at
	// CsumStart()+CsumOffset() holds the folded pseudo-header sum, and the
	// one's complement of the Internet checksum from CsumStart() to the end
	// of the frame belongs there.
	FlagNeedsCsum = 1
	// FlagDataValid: the checksum was verified (only on reads, and only
	// where the kernel says so).
	FlagDataValid = 2
)

// GSO types of a VNetHdr.
const (
	GSONone  = 0    // not a superframe
	GSOTCPv4 = 1    // TCP over IPv4, segment at GSOSize()
	GSOUDP   = 3    // UDP fragmentation offload (legacy UFO); l2wg never enables it
	GSOTCPv6 = 4    // TCP over IPv6, segment at GSOSize()
	GSOUDPL4 = 5    // UDP segmentation offload (USO); l2wg never enables it
	GSOECN   = 0x80 // flag on top of a TCP type: the ECN CWR bit is set
)

// Flags returns the flags byte.
func (h *VNetHdr) Flags() uint8 { return h[0] }

// GSOType returns the GSO type byte, including a GSOECN bit.
func (h *VNetHdr) GSOType() uint8 { return h[1] }

// HdrLen returns hdr_len. Treat it as a hint: the kernel writes the length of
// the skb's linear part, not the length of the headers.
func (h *VNetHdr) HdrLen() uint16 { return binary.LittleEndian.Uint16(h[2:4]) }

// GSOSize returns gso_size, the payload bytes per segment.
func (h *VNetHdr) GSOSize() uint16 { return binary.LittleEndian.Uint16(h[4:6]) }

// CsumStart returns csum_start, counted from the first byte of the frame.
func (h *VNetHdr) CsumStart() uint16 { return binary.LittleEndian.Uint16(h[6:8]) }

// CsumOffset returns csum_offset, counted from CsumStart.
func (h *VNetHdr) CsumOffset() uint16 { return binary.LittleEndian.Uint16(h[8:10]) }

// NeedsCsum reports whether the frame carries a partial checksum.
func (h *VNetHdr) NeedsCsum() bool { return h[0]&FlagNeedsCsum != 0 }

// IsGSO reports whether the frame is a superframe to be segmented.
func (h *VNetHdr) IsGSO() bool { return h[1]&^GSOECN != GSONone }

// SetFlags sets the flags byte.
func (h *VNetHdr) SetFlags(v uint8) { h[0] = v }

// SetGSOType sets the GSO type byte.
func (h *VNetHdr) SetGSOType(v uint8) { h[1] = v }

// SetHdrLen sets hdr_len.
func (h *VNetHdr) SetHdrLen(v uint16) { binary.LittleEndian.PutUint16(h[2:4], v) }

// SetGSOSize sets gso_size.
func (h *VNetHdr) SetGSOSize(v uint16) { binary.LittleEndian.PutUint16(h[4:6], v) }

// SetCsumStart sets csum_start.
func (h *VNetHdr) SetCsumStart(v uint16) { binary.LittleEndian.PutUint16(h[6:8], v) }

// SetCsumOffset sets csum_offset.
func (h *VNetHdr) SetCsumOffset(v uint16) { binary.LittleEndian.PutUint16(h[8:10], v) }
