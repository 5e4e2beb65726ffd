package tap

import (
	"encoding/binary"
)

// UDP segmentation offload (USO) towards the TAP. Every frame written to a
// TAP crosses the kernel's whole receive path (the bridge, bridge netfilter,
// a veth, the VM's stack) in the writer's thread; for small datagrams that
// path is most of a node's work. A run of UDP datagrams of one flow, of
// equal size but the last (which may be shorter), in order, is the exact
// output of the kernel's own UDP segmentation of one superframe: such a run
// is written as that superframe (virtio-net GSO_UDP_L4), and the kernel
// crosses its path once and cuts the datagrams apart only where it must (at
// the receiving socket, or at a device that cannot take the superframe).
//
// Only frames whose UDP checksum is still to be computed (NEEDS_CSUM, as a
// kernel with checksum offload hands them over) join a run, so the kernel
// computes the checksum of each datagram as it would have for each frame;
// IPv4 headers must be without options, not fragments, with a valid header
// checksum, and with consecutive IDs (what the segmentation gives each
// datagram). Anything else is written as it came.
//
// The payloads are not copied: the superframe is one writev of the virtio
// header, the first datagram's headers rewritten for the superframe, and
// each datagram's payload.

const (
	ipProtoUDP   = 17
	udpHeaderLen = 8
	// maxUSOSegs bounds the datagrams of one superframe (the kernel's own
	// UDP_MAX_SEGMENTS is 128).
	maxUSOSegs = 64
	// maxUSOHeadLen is the longest header run rewritten: Ethernet, two
	// VLAN tags, IPv6, UDP.
	maxUSOHeadLen = ethHeaderLen + maxVLANTagsLen + ipv6HeaderLen + udpHeaderLen
	// maxUSOLen is the longest IP packet a superframe may make (IPv4
	// total length, IPv6 payload length).
	maxUSOLen = 65535
)

// udpDatagram is the parsed shape of a frame that may join a run.
type udpDatagram struct {
	ipOff   int  // start of the IP header
	l4Off   int  // start of the UDP header
	end     int  // end of the UDP payload (the frame may carry padding)
	v6      bool // IPv6, else IPv4
	id      uint16
	payload int // UDP payload bytes
}

// parseUDPDatagram reports whether frame, with hdr, is a UDP datagram that
// may join a run: not a superframe, its UDP checksum partial (NEEDS_CSUM at
// the UDP checksum field), IPv4 without options or fragmentation and with a
// valid header checksum, or IPv6 without extension headers; lengths that
// agree with the frame; at least one byte of payload.
func parseUDPDatagram(hdr *VNetHdr, frame []byte) (udpDatagram, bool) {
	var u udpDatagram
	if hdr == nil || hdr.IsGSO() || hdr.Flags()&^(FlagNeedsCsum|FlagDataValid) != 0 || !hdr.NeedsCsum() {
		return u, false
	}
	if len(frame) < ethHeaderLen {
		return u, false
	}
	u.ipOff = ethHeaderLen
	et := binary.BigEndian.Uint16(frame[12:])
	for et == etherTypeVLAN || et == etherTypeQinQ {
		if u.ipOff >= ethHeaderLen+maxVLANTagsLen || len(frame) < u.ipOff+4 {
			return u, false
		}
		et = binary.BigEndian.Uint16(frame[u.ipOff+2:])
		u.ipOff += 4
	}
	var ipLen int // the IP packet's length by its header
	switch et {
	case etherTypeIPv4:
		if len(frame) < u.ipOff+20 {
			return u, false
		}
		ip := frame[u.ipOff:]
		if ip[0] != 0x45 || ip[9] != ipProtoUDP || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return u, false
		}
		if fold(sum(0, ip[:20])) != 0xffff {
			return u, false // a bad header checksum: the kernel drops it
		}
		ipLen = int(binary.BigEndian.Uint16(ip[2:]))
		u.id = binary.BigEndian.Uint16(ip[4:])
		u.l4Off = u.ipOff + 20
	case etherTypeIPv6:
		if len(frame) < u.ipOff+ipv6HeaderLen {
			return u, false
		}
		ip := frame[u.ipOff:]
		if ip[0]>>4 != 6 || ip[6] != ipProtoUDP {
			return u, false
		}
		ipLen = ipv6HeaderLen + int(binary.BigEndian.Uint16(ip[4:]))
		u.l4Off = u.ipOff + ipv6HeaderLen
		u.v6 = true
	default:
		return u, false
	}
	u.end = u.ipOff + ipLen
	if u.end > len(frame) || u.end < u.l4Off+udpHeaderLen+1 {
		return u, false
	}
	if int(binary.BigEndian.Uint16(frame[u.l4Off+4:])) != u.end-u.l4Off {
		return u, false // UDP length disagrees with IP's
	}
	if int(hdr.CsumStart()) != u.l4Off || hdr.CsumOffset() != 6 {
		return u, false
	}
	u.payload = u.end - u.l4Off - udpHeaderLen
	return u, true
}

// sameFlow reports whether b, the k-th datagram after a (k >= 1), continues
// a's run: the same headers but for the lengths, checksums and (IPv4) an ID
// k higher.
func sameFlow(a udpDatagram, fa []byte, b udpDatagram, fb []byte, k int) bool {
	if a.ipOff != b.ipOff || a.v6 != b.v6 || string(fa[:a.ipOff]) != string(fb[:b.ipOff]) {
		return false
	}
	ia, ib := fa[a.ipOff:], fb[b.ipOff:]
	if a.v6 {
		if string(ia[:4]) != string(ib[:4]) || string(ia[6:40]) != string(ib[6:40]) {
			return false
		}
	} else {
		if ia[1] != ib[1] || string(ia[6:10]) != string(ib[6:10]) || string(ia[12:20]) != string(ib[12:20]) {
			return false
		}
		if b.id != a.id+uint16(k) {
			return false
		}
	}
	return string(fa[a.l4Off:a.l4Off+4]) == string(fb[b.l4Off:b.l4Off+4]) // ports
}

// usoRun is a run being collected, and the writev that writes it.
type usoRun struct {
	first    udpDatagram
	n        int // datagrams
	bytes    int // UDP payload bytes of all of them
	hdr      VNetHdr
	head     []byte // the superframe's headers, in headBuf (seal)
	headBuf  [maxUSOHeadLen]byte
	payloads [maxUSOSegs][]byte // into the caller's frames
	sys      usoSys             // the platform's write of the run
}

// extends reports whether datagram b (with frame fb) can join the run whose
// first frame is fa, and adds it if so. A shorter datagram ends the run: it
// can join, but nothing after it.
func (r *usoRun) extends(fa []byte, b udpDatagram, fb []byte) bool {
	a := r.first
	if r.n >= maxUSOSegs || b.payload > a.payload || r.lastShort() {
		return false
	}
	ipLen := udpHeaderLen + r.bytes + b.payload // IPv6's payload length
	if !a.v6 {
		ipLen += 20 // IPv4's total length
	}
	if ipLen > maxUSOLen {
		return false
	}
	if !sameFlow(a, fa, b, fb, r.n) {
		return false
	}
	r.addPayload(fb[b.l4Off+udpHeaderLen : b.end])
	return true
}

// lastShort reports whether the run's last datagram is shorter than its first.
func (r *usoRun) lastShort() bool { return r.bytes != r.n*r.first.payload }

// start begins a run with datagram a of frame fa.
func (r *usoRun) start(a udpDatagram, fa []byte) {
	r.first, r.n, r.bytes = a, 0, 0
	r.addPayload(fa[a.l4Off+udpHeaderLen : a.end])
}

func (r *usoRun) addPayload(p []byte) {
	r.payloads[r.n] = p
	r.n++
	r.bytes += len(p)
}

// seal writes the superframe's virtio header and headers (from the run's
// first frame fa) into r.hdr and r.head.
func (r *usoRun) seal(fa []byte) {
	a := r.first
	h := r.headBuf[:a.l4Off+udpHeaderLen]
	r.head = h
	copy(h, fa[:len(h)])
	udpLen := udpHeaderLen + r.bytes
	ip := h[a.ipOff:]
	if a.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(udpLen))
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(20+udpLen))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^fold(sum(0, ip[:20])))
	}
	udp := h[a.l4Off:]
	// The partial checksum holds the pseudo-header sum, length included:
	// replace the first datagram's UDP length by the superframe's.
	oldLen := binary.BigEndian.Uint16(udp[4:])
	check := binary.BigEndian.Uint16(udp[6:])
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen))
	binary.BigEndian.PutUint16(udp[6:], fold(uint64(check)+uint64(^oldLen)+uint64(udpLen)))

	r.hdr = VNetHdr{}
	r.hdr.SetFlags(FlagNeedsCsum)
	r.hdr.SetGSOType(GSOUDPL4)
	r.hdr.SetHdrLen(uint16(len(h)))
	r.hdr.SetGSOSize(uint16(a.payload))
	r.hdr.SetCsumStart(uint16(a.l4Off))
	r.hdr.SetCsumOffset(6)
}

// clear drops the run's pointers into the caller's frames.
func (r *usoRun) clear() {
	clear(r.payloads[:r.n])
	r.n, r.bytes = 0, 0
}

// WriteFrames writes a batch of frames, each as WriteFrame does; view
// returns a frame's header (nil: zero) and bytes, and should be a function
// literal that captures nothing, so that the call allocates nothing. On a
// TAP with Offload, each run of UDP datagrams of one flow (see above) goes
// to the kernel as one superframe; if the kernel refuses superframes, the
// run's frames are written one by one, and so is every later run. Frames
// are not retained. It returns the first error after trying every frame.
func WriteFrames[F any](d *Device, frames []F, view func(*F) (*VNetHdr, []byte)) error {
	if !d.usoEnabled() {
		var first error
		for i := range frames {
			hdr, frame := view(&frames[i])
			if err := d.WriteFrame(hdr, frame); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	r := d.getRun()
	defer d.putRun(r)
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for i := 0; i < len(frames); {
		hdr, frame := view(&frames[i])
		a, ok := parseUDPDatagram(hdr, frame)
		if !ok || i+1 == len(frames) {
			note(d.WriteFrame(hdr, frame))
			i++
			continue
		}
		r.start(a, frame)
		j := i + 1
		for ; j < len(frames); j++ {
			hb, fb := view(&frames[j])
			b, ok := parseUDPDatagram(hb, fb)
			if !ok || !r.extends(frame, b, fb) {
				break
			}
		}
		if r.n == 1 {
			r.clear()
			note(d.WriteFrame(hdr, frame))
			i++
			continue
		}
		r.seal(frame)
		written, err := d.writeRun(r)
		r.clear()
		if !written {
			for k := i; k < j; k++ {
				hk, fk := view(&frames[k])
				note(d.WriteFrame(hk, fk))
			}
		}
		note(err)
		i = j
	}
	return first
}

// USOStats counts the superframes WriteFrames has written and the datagrams
// they carried.
type USOStats struct {
	Superframes uint64
	Datagrams   uint64
	Refused     bool // the kernel refused a superframe: runs go frame by frame
}
