package node

import (
	"crypto/sha256"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/frag"
	"github.com/l2wg/l2wg/tap"
	"github.com/l2wg/l2wg/tunnel"
)

// tapPort is the TAP as a switch port: it reads frames into the switch,
// writes the switch's frames, and keeps the host off the VM segment (host
// isolation, isolate_host).
type tapPort struct {
	dev     *tap.Device
	log     *slog.Logger
	br      *bridge.Bridge
	id      bridge.PortID // set once the switch has the port, before any frame moves
	isolate atomic.Bool   // isolate_host in force

	writeErrors   atomic.Uint64
	lastErrLogged atomic.Int64
}

var _ bridge.Port = (*tapPort)(nil)
var _ bridge.Port = (*tunnel.PeerPort)(nil)

// WriteFrames writes each frame, with its offload header, to the TAP.
func (p *tapPort) WriteFrames(frames []bridge.Frame) {
	for i := range frames {
		if err := p.dev.WriteFrame((*tap.VNetHdr)(&frames[i].Offload), frames[i].Data); err != nil {
			p.writeErrors.Add(1)
			now := time.Now().UnixNano()
			if last := p.lastErrLogged.Load(); now-last > int64(time.Second) && p.lastErrLogged.CompareAndSwap(last, now) {
				p.log.Debug("write to tap failed", "err", err, "errors", p.writeErrors.Load())
			}
		}
	}
}

// tapMAC derives the TAP's MAC from the node's public key: stable across
// restarts, locally administered, and starting with 0xfe so that a Linux
// bridge never adopts it as its own address (a bridge takes the lowest port
// MAC), as libvirt does for its vnet TAPs.
func tapMAC(publicKey [32]byte) [6]byte {
	sum := sha256.Sum256(append([]byte("l2wg tap mac\x00"), publicKey[:]...))
	return [6]byte{0xfe, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

// routineReadFromTAP moves frames from the TAP into sw in batches until the
// TAP is closed; a read error before done is closed goes to fatal.
func (p *tapPort) routineReadFromTAP(sw interface {
	Input(bridge.PortID, []bridge.Frame)
}, done <-chan struct{}, fatal func(error)) {
	bufs := make([][]byte, tapBatch)
	for i := range bufs {
		bufs[i] = make([]byte, frag.MaxFrameLen)
	}
	hdrs := make([]tap.VNetHdr, tapBatch)
	sizes := make([]int, tapBatch)
	frames := make([]bridge.Frame, tapBatch)
	for {
		count, err := p.dev.ReadFrames(bufs, hdrs, sizes)
		for i := 0; i < count; i++ {
			frames[i] = bridge.Frame{Offload: hdrs[i], Data: bufs[i][:sizes[i]]}
		}
		if count > 0 {
			sw.Input(p.id, frames[:count])
		}
		if err != nil {
			select {
			case <-done:
			default:
				p.log.Error("read from tap failed; stopping", "tap", p.dev.Name(), "err", err)
				fatal(err)
			}
			return
		}
	}
}

// setIsolateHost turns host isolation on or off.
func (p *tapPort) setIsolateHost(on bool) {
	p.isolate.Store(on)
	p.refreshHostFilter()
}

// refreshHostFilter keeps frames from the hypervisor's own network stack off
// the VM segment: their source MAC is the host bridge's (or, without a
// bridge, the TAP's own). The host bridge's MAC can change (it takes its
// lowest port's): housekeeping calls this every second.
func (p *tapPort) refreshHostFilter() {
	if !p.isolate.Load() {
		p.br.SetSourceFilter(p.id, nil)
		return
	}
	deny := []bridge.MAC{bridge.MAC(p.dev.MAC())}
	if mac, ok, err := p.dev.BridgeMAC(); err == nil && ok {
		deny = append(deny, bridge.MAC(mac))
	}
	p.br.SetSourceFilter(p.id, slices.Compact(deny))
}
