package tunnel

import (
	"os"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/l2wg/l2wg/frag"
)

const (
	// batchSize is how many packets wireguard-go reads and writes per call.
	batchSize = 128
	// queueLen bounds the frames waiting for wireguard-go. A full queue
	// blocks the port that sends (the TAP reader, or a peer's receiver for
	// transit), so backpressure reaches the TAP's kernel queue instead of
	// frames being dropped here.
	queueLen = 128
	// smallBufLen holds any frame of a 1500-byte MTU, tagged or not.
	smallBufLen = 2048
)

// outFrame is one frame waiting to be split and read by wireguard-go.
type outFrame struct {
	dst     Label
	offload [frag.OffloadLen]byte
	n       int
	buf     []byte
}

// virtualTUN is the in-memory tun.Device between the switch and wireguard-go.
// Outbound, peer ports enqueue whole frames and wireguard-go's single TUN
// reader splits them into labelled chunks directly into its own buffers.
// Inbound, wireguard-go writes decrypted chunks, which go to reassembly and
// then to the switch.
type virtualTUN struct {
	mtu      int
	maxChunk int // frag chunk bytes per packet: mtu minus the label header
	self     Label
	splitter *frag.Splitter

	queue     chan *outFrame
	ctrl      chan ctrlPacket // control messages, ahead of frames
	events    chan tun.Event
	closed    chan struct{}
	closeOnce sync.Once

	smallPool, largePool sync.Pool

	// The reader's state: only wireguard-go's TUN reader goroutine touches it.
	cur    *outFrame
	chunks frag.Chunks

	// receive handles a batch of decrypted packets (tunnel.receive).
	receive func(bufs [][]byte, offset int)

	dropsTooBig atomic.Uint64
	dropsClosed atomic.Uint64
	dropsCtrl   atomic.Uint64
}

func newVirtualTUN(mtu int, self Label) *virtualTUN {
	t := &virtualTUN{
		mtu:      mtu,
		maxChunk: mtu - labelHeaderLen,
		self:     self,
		splitter: frag.NewSplitter(),
		queue:    make(chan *outFrame, queueLen),
		ctrl:     make(chan ctrlPacket, 64),
		events:   make(chan tun.Event, 1),
		closed:   make(chan struct{}),
	}
	t.smallPool.New = func() any { return &outFrame{buf: make([]byte, smallBufLen)} }
	t.largePool.New = func() any { return &outFrame{buf: make([]byte, frag.MaxFrameLen)} }
	t.events <- tun.EventUp
	return t
}

// enqueue copies one frame for dst into the queue. It blocks while the queue
// is full and returns false once the device is closed. The caller keeps
// ownership of frame.
func (t *virtualTUN) enqueue(dst Label, offload *[frag.OffloadLen]byte, frame []byte) bool {
	if len(frame) > frag.MaxFrameLen {
		t.dropsTooBig.Add(1)
		return true
	}
	var f *outFrame
	if len(frame) <= smallBufLen {
		f = t.smallPool.Get().(*outFrame)
	} else {
		f = t.largePool.Get().(*outFrame)
	}
	f.dst = dst
	f.offload = *offload
	f.n = copy(f.buf, frame)
	select {
	case t.queue <- f:
		return true
	case <-t.closed:
		t.release(f)
		t.dropsClosed.Add(1)
		return false
	}
}

// sendControl queues a control packet; when the control queue is full the
// packet is dropped (probes are periodic, the next one will do).
func (t *virtualTUN) sendControl(c ctrlPacket) {
	select {
	case t.ctrl <- c:
	default:
		t.dropsCtrl.Add(1)
	}
}

func (t *virtualTUN) release(f *outFrame) {
	if cap(f.buf) == smallBufLen {
		t.smallPool.Put(f)
	} else {
		t.largePool.Put(f)
	}
}

// Read fills bufs with labelled chunks. It blocks for the first frame only;
// a frame whose chunks do not all fit this batch continues in the next call.
func (t *virtualTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) {
		if t.cur == nil {
			var f *outFrame
			var c ctrlPacket
			got := false
			if n == 0 {
				select {
				case c = <-t.ctrl:
					got = true
				case f = <-t.queue:
				case <-t.closed:
					return 0, os.ErrClosed
				}
			} else {
				select {
				case c = <-t.ctrl:
					got = true
				case f = <-t.queue:
				default:
					return n, nil
				}
			}
			if got {
				pkt := bufs[n][offset:]
				copy(pkt[labelHeaderLen:], c.data[:])
				putLabelHeader(pkt, t.self, c.dst, labelHeaderLen+probeLen)
				sizes[n] = labelHeaderLen + probeLen
				n++
				continue
			}
			t.cur = f
			t.chunks = t.splitter.Split(&f.offload, f.buf[:f.n], t.maxChunk)
		}
		pkt := bufs[n][offset:]
		m := t.chunks.Next(pkt[labelHeaderLen : labelHeaderLen+t.maxChunk])
		if m > 0 {
			putLabelHeader(pkt, t.self, t.cur.dst, labelHeaderLen+m)
			sizes[n] = labelHeaderLen + m
			n++
		}
		if t.chunks.Remaining() == 0 {
			t.chunks = frag.Chunks{}
			t.release(t.cur)
			t.cur = nil
		}
	}
	return n, nil
}

// Write takes decrypted packets from wireguard-go.
func (t *virtualTUN) Write(bufs [][]byte, offset int) (int, error) {
	select {
	case <-t.closed:
		return 0, os.ErrClosed
	default:
	}
	t.receive(bufs, offset)
	return len(bufs), nil
}

func (t *virtualTUN) File() *os.File           { return nil }
func (t *virtualTUN) MTU() (int, error)        { return t.mtu, nil }
func (t *virtualTUN) Name() (string, error)    { return "l2wg", nil }
func (t *virtualTUN) Events() <-chan tun.Event { return t.events }
func (t *virtualTUN) BatchSize() int           { return batchSize }

// Close unblocks the reader (os.ErrClosed) and every blocked enqueue.
func (t *virtualTUN) Close() error {
	t.closeOnce.Do(func() {
		close(t.closed)
		close(t.events)
	})
	return nil
}

var _ tun.Device = (*virtualTUN)(nil)
