/* SPDX-License-Identifier: MIT
 *
 * Copyright (C) 2017-2025 WireGuard LLC. All Rights Reserved.
 */

package device

import (
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// PoolBound bounds each pool (message buffers, elements, containers) of a
// device created after it is set; 0 leaves them unbounded. A variable, so
// that an embedder can bound its memory (l2wg patch; upstream PR #69
// proposes the same for PreallocatedBuffersPerPool).
var PoolBound uint32 = PreallocatedBuffersPerPool

// A WaitPool with a bound keeps the items put back in a free list of its
// own rather than in a sync.Pool (l2wg patch): a sync.Pool may drop its
// items at any garbage collection, and the device then allocates (and
// zeroes, so touches) fresh 64 KiB buffers. With the free list at most max
// items ever exist and none is allocated twice.
type WaitPool struct {
	pool  sync.Pool
	cond  sync.Cond
	lock  sync.Mutex
	count uint32 // Get calls not yet Put back
	max   uint32
	new   func() any
	free  []any // with max != 0: items put back, at most max
}

func NewWaitPool(max uint32, new func() any) *WaitPool {
	p := &WaitPool{pool: sync.Pool{New: new}, max: max, new: new}
	p.cond = sync.Cond{L: &p.lock}
	return p
}

func (p *WaitPool) Get() any {
	if p.max == 0 {
		return p.pool.Get()
	}
	p.lock.Lock()
	for p.count >= p.max {
		p.cond.Wait()
	}
	p.count++
	var x any
	if n := len(p.free); n > 0 {
		x = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	}
	p.lock.Unlock()
	if x == nil {
		x = p.new()
	}
	return x
}

func (p *WaitPool) Put(x any) {
	if p.max == 0 {
		p.pool.Put(x)
		return
	}
	p.lock.Lock()
	defer p.lock.Unlock()
	p.free = append(p.free, x)
	p.count--
	p.cond.Signal()
}

// A messageArena is memory mapped outside the Go heap that the message
// buffers of a bounded pool are cut from (l2wg patch). The garbage
// collector lets the heap grow to twice what it finds live (GOGC=100), and
// held buffers count as live even though pages of them never written
// cost nothing: each receive batch holds 128 buffers, most never touched.
// Outside the heap, the collector's headroom is twice the small objects
// only. Its pages are never given back: a pool's arena serves the next
// device's pool once the pool is unreachable (its finalizer).
type messageArena struct {
	mem  []byte
	next atomic.Uint32 // buffers handed out
}

// arenaStride is the distance between buffers: a page multiple, so that a
// short packet touches one page.
const arenaStride = 1 << 16

var spareArenas struct {
	sync.Mutex
	list []*messageArena
}

// newMessageArena returns an arena of n buffers, nil if it cannot map one.
func newMessageArena(n uint32) *messageArena {
	spareArenas.Lock()
	for i, a := range spareArenas.list {
		if uint64(len(a.mem)) == uint64(n)*arenaStride {
			spareArenas.list = append(spareArenas.list[:i], spareArenas.list[i+1:]...)
			spareArenas.Unlock()
			a.next.Store(0)
			return a
		}
	}
	spareArenas.Unlock()
	size := uint64(n) * arenaStride
	if size == 0 || size > 1<<30 {
		return nil
	}
	mem, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	// A transparent huge page would make a touched byte cost 2 MiB.
	unix.Madvise(mem, unix.MADV_NOHUGEPAGE)
	return &messageArena{mem: mem}
}

// get returns a buffer of the arena, or of the Go heap once every one of
// the arena's is handed out.
func (a *messageArena) get() *[MaxMessageSize]byte {
	if a != nil {
		if off := uint64(a.next.Add(1)-1) * arenaStride; off < uint64(len(a.mem)) {
			return (*[MaxMessageSize]byte)(a.mem[off : off+MaxMessageSize])
		}
		a.next.Store(uint32(len(a.mem) / arenaStride)) // no wrap-around
	}
	return new([MaxMessageSize]byte)
}

func (device *Device) PopulatePools() {
	device.pool.inboundElementsContainer = NewWaitPool(PoolBound, func() any {
		s := make([]*QueueInboundElement, 0, device.BatchSize())
		return &QueueInboundElementsContainer{elems: s}
	})
	device.pool.outboundElementsContainer = NewWaitPool(PoolBound, func() any {
		s := make([]*QueueOutboundElement, 0, device.BatchSize())
		return &QueueOutboundElementsContainer{elems: s}
	})
	if PoolBound == 0 {
		device.pool.messageBuffers = NewWaitPool(0, func() any {
			return new([MaxMessageSize]byte)
		})
	} else {
		arena := newMessageArena(PoolBound)
		device.pool.messageBuffers = NewWaitPool(PoolBound, func() any {
			return arena.get()
		})
		if arena != nil {
			runtime.SetFinalizer(device.pool.messageBuffers, func(*WaitPool) {
				spareArenas.Lock()
				spareArenas.list = append(spareArenas.list, arena)
				spareArenas.Unlock()
			})
		}
	}
	device.pool.inboundElements = NewWaitPool(PoolBound, func() any {
		return new(QueueInboundElement)
	})
	device.pool.outboundElements = NewWaitPool(PoolBound, func() any {
		return new(QueueOutboundElement)
	})
}

func (device *Device) GetInboundElementsContainer() *QueueInboundElementsContainer {
	c := device.pool.inboundElementsContainer.Get().(*QueueInboundElementsContainer)
	c.Mutex = sync.Mutex{}
	return c
}

func (device *Device) PutInboundElementsContainer(c *QueueInboundElementsContainer) {
	for i := range c.elems {
		c.elems[i] = nil
	}
	c.elems = c.elems[:0]
	device.pool.inboundElementsContainer.Put(c)
}

func (device *Device) GetOutboundElementsContainer() *QueueOutboundElementsContainer {
	c := device.pool.outboundElementsContainer.Get().(*QueueOutboundElementsContainer)
	c.Mutex = sync.Mutex{}
	return c
}

func (device *Device) PutOutboundElementsContainer(c *QueueOutboundElementsContainer) {
	for i := range c.elems {
		c.elems[i] = nil
	}
	c.elems = c.elems[:0]
	device.pool.outboundElementsContainer.Put(c)
}

func (device *Device) GetMessageBuffer() *[MaxMessageSize]byte {
	return device.pool.messageBuffers.Get().(*[MaxMessageSize]byte)
}

func (device *Device) PutMessageBuffer(msg *[MaxMessageSize]byte) {
	device.pool.messageBuffers.Put(msg)
}

func (device *Device) GetInboundElement() *QueueInboundElement {
	return device.pool.inboundElements.Get().(*QueueInboundElement)
}

func (device *Device) PutInboundElement(elem *QueueInboundElement) {
	elem.clearPointers()
	device.pool.inboundElements.Put(elem)
}

func (device *Device) GetOutboundElement() *QueueOutboundElement {
	return device.pool.outboundElements.Get().(*QueueOutboundElement)
}

func (device *Device) PutOutboundElement(elem *QueueOutboundElement) {
	elem.clearPointers()
	device.pool.outboundElements.Put(elem)
}
