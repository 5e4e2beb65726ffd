package tap

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Frame I/O. The descriptor is non-blocking and parked in Go's netpoller:
// syscall.RawConn.Read calls readOp.read, which reads with readv(2) (header
// and frame in one call, no copy) until EAGAIN or a full batch, and waits for
// readability only when it has nothing yet. Writes are one writev(2) each.
// The callbacks are method values bound once (the read state lives in the
// Device, the write state in pooled writeOps), so neither path allocates.

// ReadFrames blocks until at least one frame is available, then reads as many
// more as are ready without blocking, up to len(bufs). It returns the number
// of frames n; for each i < n, hdrs[i] holds the frame's virtio-net header
// (zero without Offload) and bufs[i][:sizes[i]] the Ethernet frame, from the
// destination address on, without FCS.
//
// hdrs and sizes must be at least as long as bufs, and every buffer must hold
// BufLen() bytes: MaxOffloadFrameLen with Offload, MTU+FrameOverhead without.
// Concurrent calls are served one after the other. After Interrupt it may
// return no frames and no error. After Close, ReadFrames returns an error
// wrapping os.ErrClosed (errors.Is(err, os.ErrClosed)).
func (d *Device) ReadFrames(bufs [][]byte, hdrs []VNetHdr, sizes []int) (n int, err error) {
	if len(hdrs) < len(bufs) || len(sizes) < len(bufs) {
		return 0, fmt.Errorf("read tap %q: %d buffers but %d headers and %d sizes", d.name, len(bufs), len(hdrs), len(sizes))
	}
	for i := range bufs {
		if len(bufs[i]) < d.bufLen {
			return 0, fmt.Errorf("read tap %q: buffer %d holds %d bytes, needs %d", d.name, i, len(bufs[i]), d.bufLen)
		}
	}
	r := &d.rd
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bufs, r.hdrs, r.sizes, r.n, r.errno = bufs, hdrs, sizes, 0, 0
	err = d.rc.Read(r.fn)
	n, errno := r.n, r.errno
	r.bufs, r.hdrs, r.sizes = nil, nil, nil
	switch {
	case n > 0:
		return n, nil // an error after frames comes again on the next call
	case d.closed.Load():
		return 0, fmt.Errorf("read tap %q: %w", d.name, os.ErrClosed)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// Interrupt. Clearing the deadline may also clear an Interrupt
		// that came since; callers look for work before they read again.
		if err := d.file.SetReadDeadline(time.Time{}); err != nil {
			return 0, fmt.Errorf("read tap %q: %w", d.name, err)
		}
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read tap %q: %w", d.name, err)
	case errno != 0:
		return 0, fmt.Errorf("read tap %q: %w", d.name, errno)
	}
	return 0, nil
}

// Interrupt makes a ReadFrames that waits for frames return at once, with
// none; without one waiting, the next ReadFrames may return early instead.
// It lets one goroutine wait for the TAP and for other work in turn: it
// looks for other work, reads, and whoever gives it work calls Interrupt.
// Interrupt is safe for concurrent use and allocates nothing.
func (d *Device) Interrupt() {
	// A deadline in the past wakes the reader parked in the netpoller
	// (and makes its next wait end at once until ReadFrames clears it).
	d.file.SetReadDeadline(interruptDeadline)
}

// Interruptible reports whether Interrupt works (true on Linux).
func (d *Device) Interruptible() bool { return true }

var interruptDeadline = time.Unix(1, 0)

// readOp is the state of one ReadFrames call, for the callback bound in fn.
type readOp struct {
	mu    sync.Mutex // serialises ReadFrames; protects the fields below
	vnet  bool
	bufs  [][]byte
	hdrs  []VNetHdr
	sizes []int
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool // r.read, bound once
}

func (r *readOp) init(vnet bool) {
	r.vnet = vnet
	r.fn = r.read
}

// read reads frames until the batch is full or none is ready. It returns
// false (wait for readability and call again) only if it has read nothing.
func (r *readOp) read(fd uintptr) bool {
	for r.n < len(r.bufs) {
		buf, hdr := r.bufs[r.n], &r.hdrs[r.n]
		var got uintptr
		var e syscall.Errno
		if r.vnet {
			var iov [2]unix.Iovec
			iov[0].Base, iov[1].Base = &hdr[0], &buf[0]
			iov[0].SetLen(VNetHdrLen)
			iov[1].SetLen(len(buf))
			got, _, e = unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&iov[0])), 2)
		} else {
			*hdr = VNetHdr{}
			got, _, e = unix.Syscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		}
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return r.n > 0
		default:
			r.errno = e
			return true
		}
		size := int(got)
		if r.vnet {
			if size < VNetHdrLen {
				continue // the kernel never does this; drop
			}
			size -= VNetHdrLen
		}
		r.sizes[r.n] = size
		r.n++
	}
	return true
}

// WriteFrame writes one Ethernet frame (destination address on, no FCS) with
// its virtio-net header; a nil hdr is the zero header. The frame is written
// before WriteFrame returns and not retained. With Offload the kernel does
// what the header asks (completes a partial checksum, segments a superframe,
// or passes both on to a bridge port that offloads). Without Offload the
// header asks work of a plain TAP that its kernel will not do, so WriteFrame
// does it in software on a copy: it completes a NEEDS_CSUM checksum and cuts
// a TCPv4/TCPv6 superframe into gso_size segments, written one by one.
//
// A frame the kernel or the software offload rejects as malformed (EINVAL),
// or that meets a TAP whose link is down (EIO), is dropped and counted in
// Dropped, and WriteFrame returns nil: one bad frame from a peer is not an
// error of the device. Other errors are returned; after Close they wrap
// os.ErrClosed.
//
// WriteFrame is safe for concurrent use and allocates nothing.
func (d *Device) WriteFrame(hdr *VNetHdr, frame []byte) error {
	if !d.offload && hdr != nil && (hdr.NeedsCsum() || hdr.IsGSO()) {
		return d.writeSoftOffload(hdr, frame)
	}
	return d.write(hdr, frame)
}

// writeSoftOffload does a header's work in software for a plain TAP.
func (d *Device) writeSoftOffload(hdr *VNetHdr, frame []byte) error {
	b := d.softBufs.Get().(*softBuf)
	err := softOffload(hdr, frame, b[:], func(f []byte) error { return d.write(nil, f) })
	d.softBufs.Put(b)
	if isMalformed(err) {
		d.dropped.Add(1)
		return nil
	}
	return err
}

// softBuf holds one frame built by the software offload.
type softBuf [MaxOffloadFrameLen]byte

// write writes one frame, with hdr (nil: zero) on the fast path.
func (d *Device) write(hdr *VNetHdr, frame []byte) error {
	if len(frame) == 0 {
		d.dropped.Add(1)
		return nil
	}
	op := d.writeOps.Get().(*writeOp)
	if d.offload {
		if hdr == nil {
			hdr = &zeroHdr
		}
		op.iov[0].Base = &hdr[0]
		op.iov[0].SetLen(VNetHdrLen)
		op.iov[1].Base = &frame[0]
		op.iov[1].SetLen(len(frame))
		op.niov = 2
	} else {
		op.iov[0].Base = &frame[0]
		op.iov[0].SetLen(len(frame))
		op.niov = 1
	}
	op.errno = 0
	// Control holds the descriptor against Close but takes no write lock,
	// so concurrent writers enter the kernel together; the TAP's send
	// buffer is practically unlimited, and EAGAIN falls back to waiting.
	err := d.rc.Control(op.tryFn)
	if err == nil && op.errno == unix.EAGAIN {
		err = d.rc.Write(op.waitFn)
	}
	errno := op.errno
	op.iov = [2]unix.Iovec{} // do not keep the caller's frame alive
	d.writeOps.Put(op)

	switch {
	case err != nil && d.closed.Load():
		return fmt.Errorf("write tap %q: %w", d.name, os.ErrClosed)
	case err != nil:
		return fmt.Errorf("write tap %q: %w", d.name, err)
	case errno == 0:
		return nil
	case errno == unix.EINVAL || errno == unix.EIO:
		d.dropped.Add(1)
		return nil
	}
	return fmt.Errorf("write tap %q: %w", d.name, errno)
}

var zeroHdr VNetHdr

// writeOp is the state of one write, for the callbacks bound in tryFn and waitFn.
type writeOp struct {
	iov    [2]unix.Iovec
	niov   int
	errno  syscall.Errno
	tryFn  func(fd uintptr)      // op.try, bound once
	waitFn func(fd uintptr) bool // op.wait, bound once
}

func newWriteOp() *writeOp {
	op := new(writeOp)
	op.tryFn = op.try
	op.waitFn = op.wait
	return op
}

func (op *writeOp) try(fd uintptr) {
	for {
		_, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&op.iov[0])), uintptr(op.niov))
		if e != unix.EINTR {
			op.errno = e
			return
		}
	}
}

// wait is for RawConn.Write: false means wait for writability and retry.
func (op *writeOp) wait(fd uintptr) bool {
	op.try(fd)
	return op.errno != unix.EAGAIN
}
