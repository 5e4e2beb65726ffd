package tap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// The TAP carries the VMs' segment, on which the hypervisor's own stack has
// no business: no address of any family. Linux gives every interface that
// comes up an IPv6 link-local address (and with it router solicitations and
// neighbour discovery sent out of the TAP into l2wg); keepOffSegment turns
// that off before the link comes up, and removes the link-local addresses a
// TAP that is reused (persistent, or up already) still has.

// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE (include/uapi/linux/if_link.h):
// the kernel generates no IPv6 link-local address for the link.
const in6AddrGenModeNone = 1

// keepOffSegment sets the TAP's IPv6 address generation to none and removes
// its IPv6 link-local addresses. A kernel without IPv6 has nothing to do.
func (d *Device) keepOffSegment() error {
	err := d.ctl.setAddrGenModeNone(d.index)
	if errors.Is(err, unix.EAFNOSUPPORT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set ipv6 addrgenmode none: %w", err)
	}
	addrs, err := d.ctl.addrs(d.index)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if a.Addr().Is6() && a.Addr().IsLinkLocalUnicast() {
			if err := d.ctl.delAddr(d.index, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("remove address %s: %w", a, err)
			}
		}
	}
	return nil
}

// setAddrGenModeNone is `ip link set dev X addrgenmode none`: RTM_NEWLINK
// with IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE } }.
func (c *ctl) setAddrGenModeNone(index int) error {
	const (
		mode  = unix.SizeofRtAttr + 4 // a u8, padded
		inet6 = unix.SizeofRtAttr + mode
		spec  = unix.SizeofRtAttr + inet6
	)
	var req [unix.NLMSG_HDRLEN + unix.SizeofIfInfomsg + spec]byte
	ifi := req[unix.NLMSG_HDRLEN:]
	ifi[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(ifi[4:], uint32(int32(index)))
	a := ifi[unix.SizeofIfInfomsg:]
	putAttr(a, unix.IFLA_AF_SPEC|unix.NLA_F_NESTED, spec)
	putAttr(a[unix.SizeofRtAttr:], unix.AF_INET6|unix.NLA_F_NESTED, inet6)
	putAttr(a[2*unix.SizeofRtAttr:], unix.IFLA_INET6_ADDR_GEN_MODE, unix.SizeofRtAttr+1)
	a[3*unix.SizeofRtAttr] = in6AddrGenModeNone
	return c.request(req[:], unix.RTM_NEWLINK, unix.NLM_F_ACK, nil)
}

// addrs dumps the addresses of the link with ifindex index.
func (c *ctl) addrs(index int) ([]netip.Prefix, error) {
	var req [unix.NLMSG_HDRLEN + unix.SizeofIfAddrmsg]byte
	req[unix.NLMSG_HDRLEN] = unix.AF_UNSPEC
	var out []netip.Prefix
	err := c.request(req[:], unix.RTM_GETADDR, unix.NLM_F_DUMP, func(m *syscall.NetlinkMessage) {
		if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
			return
		}
		bits := int(m.Data[1])
		if int(int32(binary.NativeEndian.Uint32(m.Data[4:]))) != index {
			return
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			return
		}
		for _, at := range attrs {
			if at.Attr.Type != unix.IFA_ADDRESS {
				continue
			}
			if ip, ok := netip.AddrFromSlice(at.Value); ok {
				out = append(out, netip.PrefixFrom(ip, bits))
			}
		}
	})
	return out, err
}

// delAddr removes one address from the link with ifindex index.
func (c *ctl) delAddr(index int, p netip.Prefix) error {
	ip := p.Addr().AsSlice()
	alen := unix.SizeofRtAttr + len(ip)
	req := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfAddrmsg+alen)
	ifa := req[unix.NLMSG_HDRLEN:]
	ifa[0] = unix.AF_INET
	if p.Addr().Is6() {
		ifa[0] = unix.AF_INET6
	}
	ifa[1] = byte(p.Bits())
	binary.NativeEndian.PutUint32(ifa[4:], uint32(int32(index)))
	putAttr(ifa[unix.SizeofIfAddrmsg:], unix.IFA_ADDRESS, alen)
	copy(ifa[unix.SizeofIfAddrmsg+unix.SizeofRtAttr:], ip)
	return c.request(req, unix.RTM_DELADDR, unix.NLM_F_ACK, nil)
}

func putAttr(b []byte, typ, length int) {
	binary.NativeEndian.PutUint16(b[0:], uint16(length))
	binary.NativeEndian.PutUint16(b[2:], uint16(typ))
}

// request sends req (its netlink header is filled in here) and reads the
// answer: each message of it goes to each (a dump ends with NLMSG_DONE), and
// an NLMSG_ERROR ends it with its errno (0: the ack).
func (c *ctl) request(req []byte, typ uint16, flags uint16, each func(*syscall.NetlinkMessage)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return unix.EBADF
	}
	c.seq++
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], typ)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(req[8:], c.seq)
	if err := unix.Sendto(c.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for i := range msgs {
			m := &msgs[i]
			if m.Header.Seq != c.seq {
				continue // a late answer to an earlier request
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return errors.New("short netlink error")
				}
				if e := -int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
					return unix.Errno(e)
				}
				return nil
			default:
				if each != nil {
					each(m)
				}
			}
		}
	}
}
