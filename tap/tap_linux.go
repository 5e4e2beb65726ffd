package tap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Device is an open TAP. Its methods are safe for concurrent use.
type Device struct {
	name    string
	index   int
	offload bool // IFF_VNET_HDR: every frame read and written has a VNetHdr
	bufLen  int  // the buffer ReadFrames needs per frame
	mtu     int  // as set by Open
	mac     [6]byte

	file *os.File // non-blocking, parked in the netpoller
	rc   syscall.RawConn
	ctl  *ctl

	closed  atomic.Bool
	dropped atomic.Uint64

	rd       readOp    // serialises ReadFrames
	writeOps sync.Pool // of *writeOp
	softBufs sync.Pool // of *softBuf, for software offload on a plain TAP

	uso     usoState
	usoRuns sync.Pool // of *usoRun
}

// Open creates the TAP cfg.Name, or opens it if it exists and is persistent,
// and sets it up: offloads, MAC, MTU, bridge port, no IPv6 address
// generation (and no link-local address left over), link up, persistence (last,
// so a TAP that Open created is gone again if a step fails). It must run in
// the network namespace the TAP belongs to; the Device keeps to that
// namespace, whichever thread calls it later.
//
// Errors name the TAP: open tap "l2wg0": device or resource busy.
func Open(cfg Config) (*Device, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("open tap %q: %w", cfg.Name, err)
	}
	d, err := open(&cfg)
	if err != nil {
		return nil, fmt.Errorf("open tap %q: %w", cfg.Name, err)
	}
	return d, nil
}

func open(cfg *Config) (*Device, error) {
	c, err := openCtl()
	if err != nil {
		return nil, err
	}
	// A TAP that exists and that TUNSETIFF lets us attach to (it has no
	// other queue) is a persistent one.
	_, err = c.index(cfg.Name)
	existed := err == nil

	var f *os.File
	var name string
	if cfg.Offload {
		f, name, err = openVNet(cfg.Name)
	} else {
		f, name, err = openPlain(cfg.Name, cfg.Persistent || existed)
	}
	if err != nil {
		c.close()
		return nil, err
	}
	d := &Device{
		name:    name,
		offload: cfg.Offload,
		bufLen:  bufLen(cfg.Offload, cfg.mtu()),
		mtu:     cfg.mtu(),
		file:    f,
		ctl:     c,
	}
	if err := d.setup(cfg); err != nil {
		// Leave a TAP that was there before as it was (persistent); one
		// that Open created goes away with its last file descriptor.
		setPersist(f, existed)
		f.Close()
		c.close()
		return nil, err
	}
	if d.rc, err = f.SyscallConn(); err != nil {
		f.Close()
		c.close()
		return nil, err
	}
	d.rd.init(d.offload)
	d.writeOps.New = func() any { return newWriteOp() }
	d.softBufs.New = func() any { return new(softBuf) }
	return d, nil
}

// openVNet opens the fast path: a TAP with IFF_VNET_HDR.
func openVNet(name string) (*os.File, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, "", err
	}
	r := newIfreq(name)
	binary.NativeEndian.PutUint16(r.data[:], unix.IFF_TAP|unix.IFF_NO_PI|unix.IFF_VNET_HDR)
	if err := ioctlIfreq(fd, unix.TUNSETIFF, r); err != nil {
		unix.Close(fd)
		return nil, "", err
	}
	name = unix.ByteSliceToString(r.name[:])
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, VNetHdrLen); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("set vnet header size: %w", err)
	}
	// Little-endian headers on every host (a no-op on little-endian ones,
	// where kernels without the ioctl are fine too).
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETLE, 1); err != nil && !hostLittleEndian() {
		unix.Close(fd)
		return nil, "", fmt.Errorf("set little-endian vnet headers: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), name, nil
}

// setup brings a freshly opened TAP to cfg.
func (d *Device) setup(cfg *Config) error {
	var offloads int
	if d.offload {
		offloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	}
	// On a plain TAP too: a persistent TAP keeps the offloads an earlier
	// fast-path Open set, and would hand over superframes with no header.
	if err := control(d.file, func(fd int) error { return unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offloads) }); err != nil {
		return fmt.Errorf("set offloads %#x: %w", offloads, err)
	}
	index, err := d.ctl.index(d.name)
	if err != nil {
		return fmt.Errorf("get ifindex: %w", err)
	}
	d.index = index
	if d.mac, err = d.ctl.hwaddr(d.name); err != nil {
		return fmt.Errorf("get mac: %w", err)
	}
	if cfg.MAC != ([6]byte{}) && cfg.MAC != d.mac {
		if err := d.ctl.setHWAddr(d.name, cfg.MAC); err != nil {
			return fmt.Errorf("set mac %s: %w", formatMAC(cfg.MAC), err)
		}
		d.mac = cfg.MAC
	}
	if cur, err := d.ctl.mtu(d.name); err != nil || cur != d.mtu {
		if err := d.ctl.setMTU(d.name, d.mtu); err != nil {
			return fmt.Errorf("set mtu %d: %w", d.mtu, err)
		}
	}
	if cfg.Bridge != "" {
		if err := d.attach(cfg.Bridge); err != nil {
			return fmt.Errorf("attach to bridge %q: %w", cfg.Bridge, err)
		}
	}
	if err := d.keepOffSegment(); err != nil {
		return err
	}
	if err := d.ctl.setUp(d.name); err != nil {
		return fmt.Errorf("set link up: %w", err)
	}
	if err := setPersist(d.file, cfg.Persistent); err != nil {
		return fmt.Errorf("set persist %t: %w", cfg.Persistent, err)
	}
	return nil
}

// attach makes the TAP a port of bridge, moving it from another bridge.
func (d *Device) attach(bridge string) error {
	bi, err := d.ctl.index(bridge)
	if errors.Is(err, unix.ENODEV) {
		return errors.New("no such bridge")
	}
	if err != nil {
		return err
	}
	br, err := d.ctl.link(bi)
	if err != nil {
		return err
	}
	if br.kind != "bridge" {
		return fmt.Errorf("not a bridge (a %q link)", br.kind)
	}
	self, err := d.ctl.link(d.index)
	if err != nil {
		return err
	}
	switch {
	case self.master == bi:
		return nil
	case self.master != 0:
		old, err := d.ctl.link(self.master)
		if err != nil {
			return err
		}
		if err := d.ctl.delPort(old.name, d.index); err != nil {
			return fmt.Errorf("leave %q: %w", old.name, err)
		}
	}
	if err := d.ctl.addPort(bridge, d.index); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("not a bridge: %w", err)
		}
		return err
	}
	return nil
}

func setPersist(f *os.File, on bool) error {
	v := 0
	if on {
		v = 1
	}
	return control(f, func(fd int) error { return unix.IoctlSetInt(fd, unix.TUNSETPERSIST, v) })
}

// control runs fn on f's descriptor, holding it against a concurrent Close.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// MAC returns the TAP's own address as the kernel reports it now (the one
// Open saw, should the kernel not answer).
func (d *Device) MAC() [6]byte {
	if m, err := d.ctl.hwaddr(d.name); err == nil {
		return m
	}
	return d.mac
}

// MTU returns the TAP's MTU as the kernel reports it now (the one Open set,
// should the kernel not answer).
func (d *Device) MTU() int {
	if m, err := d.ctl.mtu(d.name); err == nil {
		return m
	}
	return d.mtu
}

// BridgeMAC returns the address of the Linux bridge the TAP is a port of now
// (asked afresh on every call), and false if it is no bridge's port.
func (d *Device) BridgeMAC() ([6]byte, bool, error) {
	self, err := d.ctl.link(d.index)
	if err != nil {
		return [6]byte{}, false, fmt.Errorf("get bridge of tap %q: %w", d.name, err)
	}
	if self.master == 0 {
		return [6]byte{}, false, nil
	}
	br, err := d.ctl.link(self.master)
	if err != nil {
		return [6]byte{}, false, fmt.Errorf("get bridge of tap %q: master %d: %w", d.name, self.master, err)
	}
	if br.kind != "bridge" {
		return [6]byte{}, false, nil
	}
	return br.mac, true, nil
}

// Close closes the TAP and wakes blocked readers, which return an error
// wrapping os.ErrClosed. The kernel removes a TAP that is not persistent when
// its last descriptor closes; a persistent one stays, with its MTU, address
// and bridge port, for the next Open. A second Close returns os.ErrClosed.
func (d *Device) Close() error {
	if !d.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("close tap %q: %w", d.name, os.ErrClosed)
	}
	err := d.file.Close()
	d.ctl.close()
	if err != nil {
		return fmt.Errorf("close tap %q: %w", d.name, err)
	}
	return nil
}

func hostLittleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }
