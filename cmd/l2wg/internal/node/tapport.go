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

// WriteFrames writes the frames, with their offload headers, to the TAP
// (runs of small UDP datagrams as one superframe: tap.WriteFrames).
func (p *tapPort) WriteFrames(frames []bridge.Frame) {
	if err := tap.WriteFrames(p.dev, frames, frameView); err != nil {
		p.writeErrors.Add(1)
		now := time.Now().UnixNano()
		if last := p.lastErrLogged.Load(); now-last > int64(time.Second) && p.lastErrLogged.CompareAndSwap(last, now) {
			p.log.Debug("write to tap failed", "err", err, "errors", p.writeErrors.Load())
		}
	}
}

func frameView(f *bridge.Frame) (*tap.VNetHdr, []byte) { return (*tap.VNetHdr)(&f.Offload), f.Data }

// tapMAC derives the TAP's MAC from the node's public key: stable across
// restarts, locally administered, and starting with 0xfe so that a Linux
// bridge never adopts it as its own address (a bridge takes the lowest port
// MAC), as libvirt does for its vnet TAPs.
func tapMAC(publicKey [32]byte) [6]byte {
	sum := sha256.Sum256(append([]byte("l2wg tap mac\x00"), publicKey[:]...))
	return [6]byte{0xfe, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

// tapReader is the TAP port's read side: its batch buffers, and where the
// frames go. It reads in the tunnel's reader goroutine as its Source
// (tunnel.Source; no goroutine hand-off on the way to a peer), or in
// routineReadFromTAP where the TAP cannot be interrupted.
type tapReader struct {
	p  *tapPort
	sw interface {
		Input(bridge.PortID, []bridge.Frame)
	}
	done  <-chan struct{}
	fatal func(error)

	bufs   [][]byte
	hdrs   []tap.VNetHdr
	sizes  []int
	frames []bridge.Frame
}

var _ tunnel.Source = (*tapReader)(nil)

func (p *tapPort) newReader(sw interface {
	Input(bridge.PortID, []bridge.Frame)
}, done <-chan struct{}, fatal func(error)) *tapReader {
	r := &tapReader{p: p, sw: sw, done: done, fatal: fatal,
		bufs:   make([][]byte, tapBatch),
		hdrs:   make([]tap.VNetHdr, tapBatch),
		sizes:  make([]int, tapBatch),
		frames: make([]bridge.Frame, tapBatch),
	}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, frag.MaxEthernetLen)
	}
	return r
}

// ReadFrames reads a batch from the TAP. A read error before done is
// closed goes to fatal (and ends the reading).
func (r *tapReader) ReadFrames() ([]bridge.Frame, error) {
	count, err := r.p.dev.ReadFrames(r.bufs, r.hdrs, r.sizes)
	for i := 0; i < count; i++ {
		r.frames[i] = bridge.Frame{Offload: r.hdrs[i], Data: r.bufs[i][:r.sizes[i]]}
	}
	if err != nil && count == 0 {
		select {
		case <-r.done:
		default:
			r.p.log.Error("read from tap failed; stopping", "tap", r.p.dev.Name(), "err", err)
			r.fatal(err)
		}
		return nil, err
	}
	return r.frames[:count], nil
}

// Input hands frames from ReadFrames to the switch.
func (r *tapReader) Input(frames []bridge.Frame) { r.sw.Input(r.p.id, frames) }

// Interrupt makes a waiting ReadFrames return.
func (r *tapReader) Interrupt() { r.p.dev.Interrupt() }

// routineReadFromTAP moves frames from the TAP into the switch in batches
// until the TAP is closed or fails.
func (r *tapReader) routineReadFromTAP() {
	for {
		frames, err := r.ReadFrames()
		if err != nil {
			return
		}
		if len(frames) > 0 {
			r.Input(frames)
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
