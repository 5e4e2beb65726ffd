package tap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ctl does link administration in-process: SIOC* ioctls for MTU, address,
// flags and bridge ports, and one netlink RTM_GETLINK request for what no
// ioctl tells (the master of a port, the kind of a link).
//
// Both go through one NETLINK_ROUTE socket: netlink sockets have no ioctls of
// their own, so the kernel hands the SIOC* ones to dev_ioctl in the socket's
// network namespace. The socket is created by Open and so stays bound to the
// namespace the TAP was created in, whichever thread later asks (sysfs would
// show the namespace that mounted it instead).
type ctl struct {
	mu  sync.Mutex // protects fd and seq
	fd  int
	seq uint32
}

// ifreq is struct ifreq: a name and a 24-byte union (sizeof is 40 on 64-bit
// hosts, 32 on 32-bit ones; the larger size is safe on both).
type ifreq struct {
	name [unix.IFNAMSIZ]byte
	data [24]byte
}

func newIfreq(name string) *ifreq {
	var r ifreq
	copy(r.name[:unix.IFNAMSIZ-1], name)
	return &r
}

func openCtl() (*ctl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	return &ctl{fd: fd}, nil
}

func (c *ctl) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// ioctl runs one SIOC* request.
func (c *ctl) ioctl(req uintptr, r *ifreq) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return unix.EBADF
	}
	return ioctlIfreq(c.fd, req, r)
}

func ioctlIfreq(fd int, req uintptr, r *ifreq) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(r)))
	if e != 0 {
		return e
	}
	return nil
}

// index returns the ifindex of the named link (ENODEV if there is none).
func (c *ctl) index(name string) (int, error) {
	r := newIfreq(name)
	if err := c.ioctl(unix.SIOCGIFINDEX, r); err != nil {
		return 0, err
	}
	return int(int32(binary.NativeEndian.Uint32(r.data[:]))), nil
}

func (c *ctl) mtu(name string) (int, error) {
	r := newIfreq(name)
	if err := c.ioctl(unix.SIOCGIFMTU, r); err != nil {
		return 0, err
	}
	return int(int32(binary.NativeEndian.Uint32(r.data[:]))), nil
}

func (c *ctl) setMTU(name string, mtu int) error {
	r := newIfreq(name)
	binary.NativeEndian.PutUint32(r.data[:], uint32(int32(mtu)))
	return c.ioctl(unix.SIOCSIFMTU, r)
}

// hwaddr returns the Ethernet address (ifr_hwaddr is a struct sockaddr:
// family, then the address).
func (c *ctl) hwaddr(name string) ([6]byte, error) {
	r := newIfreq(name)
	if err := c.ioctl(unix.SIOCGIFHWADDR, r); err != nil {
		return [6]byte{}, err
	}
	return [6]byte(r.data[2:8]), nil
}

func (c *ctl) setHWAddr(name string, mac [6]byte) error {
	r := newIfreq(name)
	binary.NativeEndian.PutUint16(r.data[:], unix.ARPHRD_ETHER)
	copy(r.data[2:], mac[:])
	return c.ioctl(unix.SIOCSIFHWADDR, r)
}

// setUp sets IFF_UP, keeping the other flags.
func (c *ctl) setUp(name string) error {
	r := newIfreq(name)
	if err := c.ioctl(unix.SIOCGIFFLAGS, r); err != nil {
		return err
	}
	flags := binary.NativeEndian.Uint16(r.data[:])
	if flags&unix.IFF_UP != 0 {
		return nil
	}
	binary.NativeEndian.PutUint16(r.data[:], flags|unix.IFF_UP)
	return c.ioctl(unix.SIOCSIFFLAGS, r)
}

// addPort makes link index a port of bridge (EOPNOTSUPP if bridge is not one).
func (c *ctl) addPort(bridge string, index int) error {
	r := newIfreq(bridge)
	binary.NativeEndian.PutUint32(r.data[:], uint32(int32(index)))
	return c.ioctl(unix.SIOCBRADDIF, r)
}

func (c *ctl) delPort(bridge string, index int) error {
	r := newIfreq(bridge)
	binary.NativeEndian.PutUint32(r.data[:], uint32(int32(index)))
	return c.ioctl(unix.SIOCBRDELIF, r)
}

// link is what RTM_GETLINK tells about one link.
type link struct {
	index  int
	name   string
	mac    [6]byte
	master int    // ifindex of the master (bridge, bond), 0 if none
	kind   string // IFLA_INFO_KIND: "bridge", "tun", "veth", ...
}

// link asks the kernel about the link with ifindex index.
func (c *ctl) link(index int) (link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return link{}, unix.EBADF
	}
	c.seq++
	var req [unix.NLMSG_HDRLEN + unix.SizeofIfInfomsg]byte
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.RTM_GETLINK)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], c.seq)
	ifi := req[unix.NLMSG_HDRLEN:]
	ifi[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(ifi[4:], uint32(int32(index)))
	if err := unix.Sendto(c.fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return link{}, err
	}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return link{}, err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return link{}, err
		}
		for i := range msgs {
			m := &msgs[i]
			if m.Header.Seq != c.seq {
				continue // a late answer to an earlier request
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return link{}, errors.New("short netlink error")
				}
				if e := -int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
					return link{}, unix.Errno(e)
				}
			case unix.RTM_NEWLINK:
				return parseLink(m)
			}
		}
	}
}

func parseLink(m *syscall.NetlinkMessage) (link, error) {
	var l link
	if len(m.Data) < unix.SizeofIfInfomsg {
		return l, errors.New("short RTM_NEWLINK")
	}
	l.index = int(int32(binary.NativeEndian.Uint32(m.Data[4:])))
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return l, err
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			l.name = unix.ByteSliceToString(a.Value)
		case unix.IFLA_ADDRESS:
			if len(a.Value) == 6 {
				l.mac = [6]byte(a.Value)
			}
		case unix.IFLA_MASTER:
			if len(a.Value) >= 4 {
				l.master = int(int32(binary.NativeEndian.Uint32(a.Value)))
			}
		case unix.IFLA_LINKINFO:
			l.kind = linkKind(a.Value)
		}
	}
	return l, nil
}

// linkKind finds IFLA_INFO_KIND among the attributes nested in IFLA_LINKINFO.
func linkKind(b []byte) string {
	for len(b) >= unix.SizeofRtAttr {
		alen := int(binary.NativeEndian.Uint16(b[0:]))
		typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff // without NLA_F_NESTED, NLA_F_NET_BYTEORDER
		if alen < unix.SizeofRtAttr || alen > len(b) {
			return ""
		}
		if typ == unix.IFLA_INFO_KIND {
			return unix.ByteSliceToString(b[unix.SizeofRtAttr:alen])
		}
		next := (alen + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if next > len(b) {
			return ""
		}
		b = b[next:]
	}
	return ""
}
