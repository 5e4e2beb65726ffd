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

// tapPort is the TAP as a switch port.
type tapPort struct {
	dev           *tap.Device
	log           *slog.Logger
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

// routineReadFromTAP moves frames from the TAP into the switch in batches.
func (n *Node) routineReadFromTAP() {
	defer n.wg.Done()
	bufs := make([][]byte, tapBatch)
	for i := range bufs {
		bufs[i] = make([]byte, frag.MaxFrameLen)
	}
	hdrs := make([]tap.VNetHdr, tapBatch)
	sizes := make([]int, tapBatch)
	frames := make([]bridge.Frame, tapBatch)
	for {
		count, err := n.tap.ReadFrames(bufs, hdrs, sizes)
		for i := 0; i < count; i++ {
			frames[i] = bridge.Frame{Offload: hdrs[i], Data: bufs[i][:sizes[i]]}
		}
		if count > 0 {
			n.capture.Wrap(n.br).Input(n.tapID, frames[:count])
		}
		if err != nil {
			select {
			case <-n.done:
			default:
				n.log.Error("read from tap failed; stopping", "tap", n.tap.Name(), "err", err)
				n.fatal(err)
			}
			return
		}
	}
}

// routineHousekeeping ages the forwarding database and follows the host
// bridge's MAC for host isolation.
func (n *Node) routineHousekeeping() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-tick.C:
			n.br.Sweep()
			n.refreshHostFilter()
		}
	}
}

// refreshHostFilter keeps frames from the hypervisor's own network stack off
// the VM segment: their source MAC is the host bridge's (or, without a
// bridge, the TAP's own).
func (n *Node) refreshHostFilter() {
	if !n.isolate.Load() {
		n.br.SetSourceFilter(n.tapID, nil)
		return
	}
	deny := []bridge.MAC{bridge.MAC(n.tap.MAC())}
	if mac, ok, err := n.tap.BridgeMAC(); err == nil && ok {
		deny = append(deny, bridge.MAC(mac))
	}
	n.br.SetSourceFilter(n.tapID, slices.Compact(deny))
}
