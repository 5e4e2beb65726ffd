package tap

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Software offload: what a plain TAP's kernel will not do for a frame that
// arrives with a virtio-net header (a peer with Offload sends superframes and
// partial checksums to a node without it). The functions here are pure and
// allocate nothing; they never modify the caller's frame, working on a copy in
// a buffer the caller lends.

// errMalformed marks a frame whose header and contents do not agree; such a
// frame is dropped and counted, never returned as an error from WriteFrame.
var errMalformed = errors.New("malformed frame")

// EtherTypes and protocol numbers the software offload reads.
const (
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86dd
	etherTypeVLAN  = 0x8100
	etherTypeQinQ  = 0x88a8
	ethHeaderLen   = 14
	ipProtoTCP     = 6
	ipv6HeaderLen  = 40
	tcpMinHeader   = 20
	tcpCsumOffset  = 16
	tcpFlagFIN     = 0x01
	tcpFlagPSH     = 0x08
	tcpFlagCWR     = 0x80
	maxVLANTagsLen = 8 // 802.1ad outer tag and 802.1Q inner tag
)

// completeChecksum finishes a partial checksum in place, as the kernel's
// skb_checksum_help: the field at start+offset already holds the folded
// pseudo-header sum, and the complement of the sum from start to the end of
// the frame replaces it. A result of 0 is sent as 0xffff (CSUM_MANGLED_0),
// which UDP needs and every other protocol accepts as the same value.
func completeChecksum(frame []byte, start, offset int) error {
	if start < ethHeaderLen || offset < 0 || offset%2 != 0 || start+offset+2 > len(frame) {
		return fmt.Errorf("%w: csum_start %d, csum_offset %d, frame of %d bytes", errMalformed, start, offset, len(frame))
	}
	c := ^fold(sum(0, frame[start:]))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[start+offset:], c)
	return nil
}

// tcpSuperframe is the parsed shape of a TCP superframe.
type tcpSuperframe struct {
	ipOff  int  // start of the IP header
	l4Off  int  // start of the TCP header
	hdrLen int  // all headers, up to the TCP payload
	v6     bool // IPv6, else IPv4
	mss    int
}

// parseTCPSuperframe checks that frame is what hdr says: Ethernet, up to two
// VLAN tags, IPv4 or IPv6 (the type hdr names), TCP, and a gso_size.
func parseTCPSuperframe(hdr *VNetHdr, frame []byte) (tcpSuperframe, error) {
	var s tcpSuperframe
	if len(frame) < ethHeaderLen {
		return s, fmt.Errorf("%w: %d bytes", errMalformed, len(frame))
	}
	s.ipOff = ethHeaderLen
	et := binary.BigEndian.Uint16(frame[12:])
	for (et == etherTypeVLAN || et == etherTypeQinQ) && s.ipOff < ethHeaderLen+maxVLANTagsLen {
		if len(frame) < s.ipOff+4 {
			return s, fmt.Errorf("%w: truncated vlan tag", errMalformed)
		}
		et = binary.BigEndian.Uint16(frame[s.ipOff+2:])
		s.ipOff += 4
	}
	switch hdr.GSOType() &^ GSOECN {
	case GSOTCPv4:
		if et != etherTypeIPv4 || len(frame) < s.ipOff+20 || frame[s.ipOff]>>4 != 4 {
			return s, fmt.Errorf("%w: gso tcpv4 without an ipv4 header", errMalformed)
		}
		ihl := int(frame[s.ipOff]&0xf) * 4
		if ihl < 20 || frame[s.ipOff+9] != ipProtoTCP {
			return s, fmt.Errorf("%w: gso tcpv4: ihl %d, protocol %d", errMalformed, ihl, frame[s.ipOff+9])
		}
		s.l4Off = s.ipOff + ihl
	case GSOTCPv6:
		if et != etherTypeIPv6 || len(frame) < s.ipOff+ipv6HeaderLen || frame[s.ipOff]>>4 != 6 {
			return s, fmt.Errorf("%w: gso tcpv6 without an ipv6 header", errMalformed)
		}
		s.v6 = true
		s.l4Off = s.ipOff + ipv6HeaderLen
		if hdr.NeedsCsum() && int(hdr.CsumStart()) > s.l4Off {
			s.l4Off = int(hdr.CsumStart()) // behind extension headers
		} else if frame[s.ipOff+6] != ipProtoTCP {
			return s, fmt.Errorf("%w: gso tcpv6: next header %d", errMalformed, frame[s.ipOff+6])
		}
	default:
		return s, fmt.Errorf("%w: gso type %d not supported in software", errMalformed, hdr.GSOType())
	}
	if hdr.NeedsCsum() && (int(hdr.CsumStart()) != s.l4Off || hdr.CsumOffset() != tcpCsumOffset) {
		return s, fmt.Errorf("%w: csum_start %d, csum_offset %d for tcp at %d", errMalformed, hdr.CsumStart(), hdr.CsumOffset(), s.l4Off)
	}
	if len(frame) < s.l4Off+tcpMinHeader {
		return s, fmt.Errorf("%w: truncated tcp header", errMalformed)
	}
	doff := int(frame[s.l4Off+12]>>4) * 4
	s.hdrLen = s.l4Off + doff
	if doff < tcpMinHeader || len(frame) < s.hdrLen {
		return s, fmt.Errorf("%w: tcp data offset %d", errMalformed, doff)
	}
	s.mss = int(hdr.GSOSize())
	if s.mss == 0 {
		return s, fmt.Errorf("%w: gso_size 0", errMalformed)
	}
	return s, nil
}

// segmentTCP cuts a TCP superframe into gso_size segments, as the kernel's
// tcp_gso_segment does: each gets a copy of the headers with its own IP length
// (IPv4 also its own ID, counting up, and header checksum), sequence number
// and full TCP checksum; FIN and PSH stay on the last segment only, CWR on the
// first only. Each segment is built in buf, which must hold the headers and
// one gso_size of payload, and handed to emit; emit must not retain it. An
// error from emit stops the segmentation and is returned as is.
func segmentTCP(hdr *VNetHdr, frame, buf []byte, emit func(seg []byte) error) error {
	s, err := parseTCPSuperframe(hdr, frame)
	if err != nil {
		return err
	}
	payload := frame[s.hdrLen:]
	if first := min(s.mss, len(payload)); s.hdrLen+first > len(buf) {
		return fmt.Errorf("%w: segment of %d bytes exceeds the %d-byte buffer", errMalformed, s.hdrLen+first, len(buf))
	}
	seq := binary.BigEndian.Uint32(frame[s.l4Off+4:])
	flags := frame[s.l4Off+13]
	var id uint16
	if !s.v6 {
		id = binary.BigEndian.Uint16(frame[s.ipOff+4:])
	}
	copy(buf, frame[:s.hdrLen])
	for off, i := 0, 0; off < len(payload) || i == 0; i++ {
		n := min(s.mss, len(payload)-off)
		seg := buf[:s.hdrLen+n]
		copy(seg[s.hdrLen:], payload[off:off+n])
		f := flags
		if off+n < len(payload) {
			f &^= tcpFlagFIN | tcpFlagPSH
		}
		if i > 0 {
			f &^= tcpFlagCWR
		}
		seg[s.l4Off+13] = f
		binary.BigEndian.PutUint32(seg[s.l4Off+4:], seq+uint32(off))
		s.fixIP(seg, id+uint16(i))
		s.fixTCPChecksum(seg)
		if err := emit(seg); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// fixIP sets the IP lengths of seg, and for IPv4 the ID and header checksum.
func (s *tcpSuperframe) fixIP(seg []byte, id uint16) {
	ip := seg[s.ipOff:]
	if s.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-ipv6HeaderLen))
		return
	}
	ihl := int(ip[0]&0xf) * 4
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:], id)
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum(0, ip[:ihl])))
}

// fixTCPChecksum writes the full TCP checksum of seg, pseudo-header included.
func (s *tcpSuperframe) fixTCPChecksum(seg []byte) {
	tcp := seg[s.l4Off:]
	tcp[tcpCsumOffset], tcp[tcpCsumOffset+1] = 0, 0
	var acc uint64
	if s.v6 {
		acc = sum(0, seg[s.ipOff+8:s.ipOff+40]) // source and destination
	} else {
		acc = sum(0, seg[s.ipOff+12:s.ipOff+20])
	}
	acc += ipProtoTCP + uint64(len(tcp))
	binary.BigEndian.PutUint16(tcp[tcpCsumOffset:], ^fold(sum(acc, tcp)))
}

// sum adds b to the one's complement sum acc, as big-endian 16-bit words
// (an odd last byte is padded with zero). Adding 32-bit words into 64 bits
// and folding later gives the same result, since 2^16 ≡ 1 (mod 2^16-1).
func sum(acc uint64, b []byte) uint64 {
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	if len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold folds a one's complement sum to 16 bits.
func fold(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

// softOffload does in software what hdr asks the kernel to do with frame, and
// hands the resulting frames to emit: a TCP superframe is segmented, a partial
// checksum completed on a copy in buf, and a frame that needs neither passes
// as is. The caller's frame is never modified. A frame the software cannot
// handle (malformed, or a GSO type other than TCP) gives an error wrapping
// errMalformed before anything is emitted.
func softOffload(hdr *VNetHdr, frame, buf []byte, emit func(frame []byte) error) error {
	switch {
	case hdr.IsGSO():
		return segmentTCP(hdr, frame, buf, emit)
	case hdr.NeedsCsum():
		if len(frame) > len(buf) {
			return fmt.Errorf("%w: frame of %d bytes exceeds the %d-byte buffer", errMalformed, len(frame), len(buf))
		}
		b := buf[:copy(buf, frame)]
		if err := completeChecksum(b, int(hdr.CsumStart()), int(hdr.CsumOffset())); err != nil {
			return err
		}
		return emit(b)
	default:
		return emit(frame)
	}
}
