package tunnel

import "github.com/l2wg/l2wg/bridge"

// Source is a port whose frames the tunnel's reader reads itself: the TAP.
// Without a Source, a TAP reader goroutine hands every batch to the switch,
// the switch queues it for a peer, and wireguard-go's TUN reader, woken by
// the queue, splits it: one goroutine hand-off (a wake of a sleeping
// thread on an idle machine) per frame on the way to the peer, a tenth of
// an idle round trip. With a Source, the TUN reader, when nothing is queued,
// reads the TAP and forwards the frames in its own goroutine, and then
// finds them queued at once. Whoever queues something while it waits for
// the TAP (probes, transit frames from peers, the spanning tree) interrupts
// that wait.
type Source interface {
	// ReadFrames waits until frames are ready and reads a batch, or
	// returns none after Interrupt. The frames stay the Source's: they are
	// valid until the next ReadFrames. An error ends the reading: the
	// tunnel reads the Source no more.
	ReadFrames() ([]bridge.Frame, error)
	// Input hands frames from ReadFrames to the switch.
	Input(frames []bridge.Frame)
	// Interrupt makes a waiting ReadFrames (or else the next one) return
	// soon. It is called from any goroutine.
	Interrupt()
}

// SetSource makes the tunnel's reader read s whenever nothing is queued for
// wireguard-go (see Source). Call it once, before frames move.
func (t *Tunnel) SetSource(s Source) {
	t.vtun.source.Store(&sourceRef{s})
	select {
	case t.vtun.nudge <- struct{}{}: // the reader may be waiting on its queue alone
	default:
	}
}

type sourceRef struct{ s Source }

// Reader states, for interrupting a reader that waits for its Source.
const (
	readerBusy    = iota // not waiting for the Source
	readerWaiting        // waiting for the Source: interrupt it to give it work
	readerWoken          // interrupted
)

// pull reads the Source into the queue until something is queued; it
// reports false once the device is closed. Without a Source (or once it has
// failed) it returns true at once, and the reader waits on the queue.
func (t *virtualTUN) pull() bool {
	for {
		ref := t.source.Load()
		if ref == nil {
			return true
		}
		t.reader.Store(readerWaiting)
		if t.pending.Load() > 0 {
			t.reader.Store(readerBusy)
			return true
		}
		select {
		case <-t.closed:
			t.reader.Store(readerBusy)
			return false
		default:
		}
		frames, err := ref.s.ReadFrames()
		t.reader.Store(readerBusy)
		if err != nil {
			t.source.CompareAndSwap(ref, nil)
			return true
		}
		if len(frames) > 0 {
			// Only this goroutine frees batches: enqueue must not wait
			// for one while it forwards (see batch).
			t.forwarding.Store(true)
			ref.s.Input(frames)
			t.forwarding.Store(false)
		}
	}
}

// wake interrupts a reader that waits for its Source: something was queued.
func (t *virtualTUN) wake() {
	if t.reader.Load() == readerWaiting && t.reader.CompareAndSwap(readerWaiting, readerWoken) {
		if ref := t.source.Load(); ref != nil {
			ref.s.Interrupt()
		}
	}
}
