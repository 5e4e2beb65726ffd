//go:build !linux

package tap

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/songgao/water"
)

// Device is an open TAP. Its methods are safe for concurrent use.
//
// Outside Linux it is a plain TAP opened with songgao/water: no offloads, no
// persistence, no MTU, MAC or bridge settings (Open refuses a Config that
// asks for them), one frame per ReadFrames call.
type Device struct {
	name    string
	offload bool // always false here
	bufLen  int
	ifce    *water.Interface

	closed  atomic.Bool
	dropped atomic.Uint64

	rmu      sync.Mutex // serialises ReadFrames
	wmu      sync.Mutex // serialises writes
	softBufs sync.Pool  // of *softBuf
}

// softBuf holds one frame built by the software offload.
type softBuf [MaxOffloadFrameLen]byte

var errNeedsLinux = errors.New("not supported on " + runtime.GOOS + ": needs linux")

// Open opens the TAP cfg.Name with songgao/water.
func Open(cfg Config) (*Device, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("open tap %q: %w", cfg.Name, err)
	}
	var unsupported string
	switch {
	case cfg.Offload:
		unsupported = "offload"
	case cfg.Persistent:
		unsupported = "persistent"
	case cfg.Bridge != "":
		unsupported = "bridge"
	case cfg.MAC != [6]byte{}:
		unsupported = "mac"
	case cfg.MTU != 0 && cfg.MTU != DefaultMTU:
		unsupported = "mtu"
	}
	if unsupported != "" {
		return nil, fmt.Errorf("open tap %q: %s: %w", cfg.Name, unsupported, errNeedsLinux)
	}
	ifce, err := water.New(water.Config{DeviceType: water.TAP, PlatformSpecificParams: waterParams(cfg.Name)})
	if err != nil {
		return nil, fmt.Errorf("open tap %q: %w", cfg.Name, err)
	}
	d := &Device{name: ifce.Name(), ifce: ifce, bufLen: bufLen(false, cfg.mtu())}
	d.softBufs.New = func() any { return new(softBuf) }
	return d, nil
}

// MAC returns the TAP's address as the system reports it (zero if it does not).
func (d *Device) MAC() [6]byte {
	var m [6]byte
	if ifi, err := net.InterfaceByName(d.name); err == nil && len(ifi.HardwareAddr) == 6 {
		m = [6]byte(ifi.HardwareAddr)
	}
	return m
}

// MTU returns the TAP's MTU as the system reports it.
func (d *Device) MTU() int {
	if ifi, err := net.InterfaceByName(d.name); err == nil {
		return ifi.MTU
	}
	return DefaultMTU
}

// BridgeMAC reports no bridge: Linux bridges exist only on Linux.
func (d *Device) BridgeMAC() ([6]byte, bool, error) { return [6]byte{}, false, nil }

// Interrupt does nothing here: water's reads cannot be interrupted, so
// Interruptible reports false and nobody waits on them for other work.
func (d *Device) Interrupt() {}

// Interruptible reports whether Interrupt works: not on this platform.
func (d *Device) Interruptible() bool { return false }

// ReadFrames reads one frame per call here; see the Linux documentation.
// After Close it returns an error wrapping os.ErrClosed.
func (d *Device) ReadFrames(bufs [][]byte, hdrs []VNetHdr, sizes []int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if len(hdrs) < len(bufs) || len(sizes) < len(bufs) {
		return 0, fmt.Errorf("read tap %q: %d buffers but %d headers and %d sizes", d.name, len(bufs), len(hdrs), len(sizes))
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	n, err := d.ifce.Read(bufs[0])
	if err != nil {
		if d.closed.Load() {
			return 0, fmt.Errorf("read tap %q: %w", d.name, os.ErrClosed)
		}
		return 0, fmt.Errorf("read tap %q: %w", d.name, err)
	}
	hdrs[0], sizes[0] = VNetHdr{}, n
	return 1, nil
}

// WriteFrame writes one frame, doing in software what hdr asks (a plain TAP
// has no offloads); see the Linux documentation.
func (d *Device) WriteFrame(hdr *VNetHdr, frame []byte) error {
	if hdr == nil || !(hdr.NeedsCsum() || hdr.IsGSO()) {
		return d.write(frame)
	}
	b := d.softBufs.Get().(*softBuf)
	err := softOffload(hdr, frame, b[:], d.write)
	d.softBufs.Put(b)
	if isMalformed(err) {
		d.dropped.Add(1)
		return nil
	}
	return err
}

func (d *Device) write(frame []byte) error {
	if len(frame) < ethHeaderLen {
		d.dropped.Add(1)
		return nil
	}
	d.wmu.Lock()
	_, err := d.ifce.Write(frame)
	d.wmu.Unlock()
	switch {
	case err == nil:
		return nil
	case d.closed.Load():
		return fmt.Errorf("write tap %q: %w", d.name, os.ErrClosed)
	}
	return fmt.Errorf("write tap %q: %w", d.name, err)
}

// Close closes the TAP; blocked readers return an error wrapping os.ErrClosed.
func (d *Device) Close() error {
	if !d.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("close tap %q: %w", d.name, os.ErrClosed)
	}
	if err := d.ifce.Close(); err != nil {
		return fmt.Errorf("close tap %q: %w", d.name, err)
	}
	return nil
}

// No USO here: there is no Offload.
type usoSys struct{}

func (d *Device) usoEnabled() bool               { return false }
func (d *Device) getRun() *usoRun                { return new(usoRun) }
func (d *Device) putRun(*usoRun)                 {}
func (d *Device) writeRun(*usoRun) (bool, error) { return false, nil }

// USO returns the counts of superframes written: none here.
func (d *Device) USO() USOStats { return USOStats{} }
