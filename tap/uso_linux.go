package tap

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// usoState is a Device's share of USO (uso.go).
type usoState struct {
	refused     atomic.Bool // the kernel refused a superframe
	superframes atomic.Uint64
	datagrams   atomic.Uint64
}

// usoSys is a run's writev: its iovecs and the callbacks bound once, so
// that writing a run allocates nothing.
type usoSys struct {
	iov    [2 + maxUSOSegs]unix.Iovec
	niov   int
	errno  unix.Errno
	tryFn  func(fd uintptr)      // s.try, bound once
	waitFn func(fd uintptr) bool // s.wait, bound once
}

func (d *Device) usoEnabled() bool { return d.offload && !d.uso.refused.Load() }

func (d *Device) getRun() *usoRun {
	if r, ok := d.usoRuns.Get().(*usoRun); ok {
		return r
	}
	r := new(usoRun)
	r.sys.tryFn, r.sys.waitFn = r.sys.try, r.sys.wait
	return r
}

func (d *Device) putRun(r *usoRun) { d.usoRuns.Put(r) }

// USO returns the counts of superframes written.
func (d *Device) USO() USOStats {
	return USOStats{
		Superframes: d.uso.superframes.Load(),
		Datagrams:   d.uso.datagrams.Load(),
		Refused:     d.uso.refused.Load(),
	}
}

// writeRun writes a sealed run as one superframe. It reports false when
// the kernel refused it (the caller then writes the frames one by one);
// from then on the Device writes no more superframes.
func (d *Device) writeRun(r *usoRun) (bool, error) {
	w := &r.sys
	w.iov[0].Base = &r.hdr[0]
	w.iov[0].SetLen(VNetHdrLen)
	w.iov[1].Base = &r.head[0]
	w.iov[1].SetLen(len(r.head))
	for i, p := range r.payloads[:r.n] {
		w.iov[2+i].Base = &p[0]
		w.iov[2+i].SetLen(len(p))
	}
	w.niov = 2 + r.n
	w.errno = 0
	err := d.rc.Control(w.tryFn)
	if err == nil && w.errno == unix.EAGAIN {
		err = d.rc.Write(w.waitFn)
	}
	errno := w.errno
	clear(w.iov[:w.niov])
	switch {
	case err != nil && d.closed.Load():
		return true, fmt.Errorf("write tap %q: %w", d.name, os.ErrClosed)
	case err != nil:
		return true, fmt.Errorf("write tap %q: %w", d.name, err)
	case errno == 0:
		d.uso.superframes.Add(1)
		d.uso.datagrams.Add(uint64(r.n))
		return true, nil
	case errno == unix.EINVAL:
		// The datagrams were checked: the kernel does not take USO.
		d.uso.refused.Store(true)
		return false, nil
	case errno == unix.EIO:
		d.dropped.Add(uint64(r.n)) // link down
		return true, nil
	}
	return true, fmt.Errorf("write tap %q: %w", d.name, errno)
}

func (w *usoSys) try(fd uintptr) {
	for {
		_, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(w.niov))
		if e != unix.EINTR {
			w.errno = e
			return
		}
	}
}

// wait is for RawConn.Write: false means wait for writability and retry.
func (w *usoSys) wait(fd uintptr) bool {
	w.try(fd)
	return w.errno != unix.EAGAIN
}
