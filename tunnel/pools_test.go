package tunnel

import (
	"runtime"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// The patched wireguard-go (tunnel/internal/wireguard-go, device/pools.go)
// keeps what a bounded pool gets back across garbage collections, so a busy
// device reuses its buffers instead of allocating, zeroing and touching
// fresh ones after every collection; and it never hands out more than the
// bound at once.
func TestBoundedPoolKeepsItemsAcrossCollections(t *testing.T) {
	const bound = 8
	made := 0
	p := device.NewWaitPool(bound, func() any { made++; return new([1 << 16]byte) })
	for round := range 3 {
		var held []any
		for range bound {
			held = append(held, p.Get())
		}
		for _, x := range held {
			p.Put(x)
		}
		runtime.GC()
		runtime.GC() // a sync.Pool drops everything after two
		if made != bound {
			t.Fatalf("round %d: the pool made %d items for %d outstanding at most; want it to reuse its own", round, made, bound)
		}
	}

	var held []any
	for range bound {
		held = append(held, p.Get())
	}
	got := make(chan any)
	go func() { got <- p.Get() }()
	select {
	case <-got:
		t.Fatal("Get returned a ninth item with eight out and a bound of eight")
	case <-time.After(50 * time.Millisecond): // a wait that must not end: Get blocks
	}
	p.Put(held[0])
	select {
	case x := <-got:
		if x != held[0] {
			t.Error("the blocked Get did not get the item put back")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Get still blocked after a Put")
	}
	if made != bound {
		t.Errorf("the pool made %d items; want %d", made, bound)
	}
}

// The patched wireguard-go cuts a bounded pool's message buffers from
// memory mapped outside the Go heap: held buffers, written or not, do not
// count as live heap, so the collector's headroom (twice the live heap)
// is not twice the buffers the readers hold. 256 buffers in the heap
// would be 16 MiB.
func TestMessageBuffersOutsideTheHeap(t *testing.T) {
	const bound, n = 1024, 256
	newDeviceMu.Lock()
	was := device.PoolBound
	device.PoolBound = bound
	dev := device.NewDevice(tuntest.NewChannelTUN().TUN(), bindtest.NewChannelBinds()[0], device.NewLogger(device.LogLevelSilent, ""))
	device.PoolBound = was
	newDeviceMu.Unlock()
	defer dev.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	bufs := make([]*[device.MaxMessageSize]byte, n)
	for i := range bufs {
		bufs[i] = dev.GetMessageBuffer()
		bufs[i][0], bufs[i][device.MaxMessageSize-1] = 1, 2 // usable, first byte to last
	}
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 2<<20 {
		t.Errorf("the heap grew by %.1f MiB for %d message buffers; want them outside it", float64(grown)/(1<<20), n)
	}
	seen := make(map[*[device.MaxMessageSize]byte]bool)
	for _, b := range bufs {
		if seen[b] {
			t.Fatal("the pool handed out one buffer twice")
		}
		seen[b] = true
		dev.PutMessageBuffer(b)
	}
}
