package tunnel

import (
	"sync/atomic"

	"golang.zx2c4.com/wireguard/device"
)

// inlineTUN is the virtual TUN as wireguard-go's reader sees it: a batch
// it reads that is small and for one idle peer is encrypted and sent right
// there, in the reader's goroutine (device.SendInline), rather than handed
// to an encryption worker and then to the peer's sequential sender, two
// wakes of sleeping threads on an idle machine. The way in is the same
// inside wireguard-go's UDP receiver (see L2WG-PATCH.md).
type inlineTUN struct {
	*virtualTUN
	dev atomic.Pointer[device.Device] // set once the device exists
}

func (t *inlineTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.virtualTUN.Read(bufs, sizes, offset)
	if dev := t.dev.Load(); dev != nil && n > 0 {
		dev.SendInline(bufs[:n], sizes[:n], offset)
	}
	return n, err
}
