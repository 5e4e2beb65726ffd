package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// A PacketSocket is a raw AF_PACKET socket bound to one interface of a lab
// namespace. It sends whole Ethernet frames as given (an 802.1Q tag included)
// and receives every frame the interface receives.
//
// The kernel strips the 802.1Q tag of a received frame before packet sockets
// see it and reports it beside the frame (PACKET_AUXDATA); Recv puts it back,
// so a frame reads as it was on the wire.
type PacketSocket struct {
	f       *os.File
	ifindex int
	name    string // "vm11/eth0", for messages
}

// A Frame is a frame received by a PacketSocket.
type Frame struct {
	// Data is the frame as it was on the wire, without FCS, with the 802.1Q
	// tag that the kernel had stripped put back in place.
	Data []byte
	// Tagged reports that the kernel had stripped a VLAN tag; TPID and TCI
	// are that tag.
	Tagged bool
	TPID   uint16
	TCI    uint16
	// PktType is the kernel's packet type (unix.PACKET_HOST, PACKET_BROADCAST,
	// PACKET_MULTICAST, PACKET_OTHERHOST).
	PktType uint8
}

// VID returns the VLAN ID of the tag the kernel had stripped.
func (f Frame) VID() uint16 { return f.TCI & 0x0fff }

// sizeofAuxdata is the size of struct tpacket_auxdata.
const sizeofAuxdata = 20

// recvBufSize holds the largest frame a packet socket can hand over (a GRO or
// GSO packet of up to 64 KiB plus headers).
const recvBufSize = 1 << 17

// OpenPacket opens a PacketSocket on interface ifname in ns. The lab closes it
// on Close if the caller has not.
func (l *Lab) OpenPacket(ns, ifname string) (*PacketSocket, error) {
	var (
		fd      = -1
		ifindex int
	)
	err := l.Do(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC,
			int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return fmt.Errorf("setsockopt PACKET_AUXDATA: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		return nil
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("open packet socket on %s/%s: %w", ns, ifname, err)
	}
	s := &PacketSocket{
		f:       os.NewFile(uintptr(fd), "packet:"+ns+"/"+ifname),
		ifindex: ifindex,
		name:    ns + "/" + ifname,
	}
	if !l.track(s) {
		return nil, fmt.Errorf("open packet socket on %s/%s: lab closed", ns, ifname)
	}
	return s, nil
}

// htons converts a 16-bit value to network byte order, as the AF_PACKET
// protocol field wants it.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Send transmits frame, a complete Ethernet frame without FCS, on the
// socket's interface.
func (s *PacketSocket) Send(frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("send on %s: frame of %d bytes is shorter than an Ethernet header", s.name, len(frame))
	}
	rc, err := s.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("send on %s: %w", s.name, err)
	}
	to := &unix.SockaddrLinklayer{Ifindex: s.ifindex, Halen: 6}
	copy(to.Addr[:], frame[:6])
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), frame, 0, to)
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("send %d bytes on %s: %w", len(frame), s.name, err)
	}
	return nil
}

// Recv returns the next frame that the interface received (frames it sent
// are skipped). It returns an error wrapping os.ErrDeadlineExceeded when no
// frame arrives before deadline.
func (s *PacketSocket) Recv(deadline time.Time) (Frame, error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return Frame{}, fmt.Errorf("receive on %s: %w", s.name, err)
	}
	if err := s.f.SetReadDeadline(deadline); err != nil {
		return Frame{}, fmt.Errorf("receive on %s: %w", s.name, err)
	}
	buf := make([]byte, recvBufSize)
	oob := make([]byte, unix.CmsgSpace(sizeofAuxdata))
	for {
		var (
			n, oobn, flags int
			from           unix.Sockaddr
			rerr           error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, flags, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return Frame{}, fmt.Errorf("receive on %s: %w", s.name, err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if flags&unix.MSG_TRUNC != 0 {
			return Frame{}, fmt.Errorf("receive on %s: frame longer than %d bytes", s.name, len(buf))
		}
		fr := Frame{PktType: ll.Pkttype}
		if aux, ok := auxdata(oob[:oobn]); ok && aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
			fr.Tagged = true
			fr.TCI = aux.Vlan_tci
			fr.TPID = 0x8100
			if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				fr.TPID = aux.Vlan_tpid
			}
		}
		fr.Data = retag(buf[:n], fr)
		return fr, nil
	}
}

// auxdata finds the PACKET_AUXDATA control message in oob.
func auxdata(oob []byte) (unix.TpacketAuxdata, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return unix.TpacketAuxdata{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA ||
			len(m.Data) < sizeofAuxdata {
			continue
		}
		e := binary.NativeEndian
		return unix.TpacketAuxdata{
			Status:    e.Uint32(m.Data[0:]),
			Len:       e.Uint32(m.Data[4:]),
			Snaplen:   e.Uint32(m.Data[8:]),
			Mac:       e.Uint16(m.Data[12:]),
			Net:       e.Uint16(m.Data[14:]),
			Vlan_tci:  e.Uint16(m.Data[16:]),
			Vlan_tpid: e.Uint16(m.Data[18:]),
		}, true
	}
	return unix.TpacketAuxdata{}, false
}

// retag returns a copy of frame with fr's VLAN tag, if any, inserted after
// the MAC addresses, where it was on the wire.
func retag(frame []byte, fr Frame) []byte {
	if !fr.Tagged || len(frame) < 12 {
		return append([]byte(nil), frame...)
	}
	out := make([]byte, 0, len(frame)+4)
	out = append(out, frame[:12]...)
	out = binary.BigEndian.AppendUint16(out, fr.TPID)
	out = binary.BigEndian.AppendUint16(out, fr.TCI)
	return append(out, frame[12:]...)
}

// Close closes the socket. A Recv blocked on it returns an error.
func (s *PacketSocket) Close() error { return s.f.Close() }
