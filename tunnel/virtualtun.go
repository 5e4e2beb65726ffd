package tunnel

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/frag"
)

const (
	// batchSize is how many packets wireguard-go reads and writes per call.
	batchSize = 128
	// queueBatches bounds the batches of frames waiting for wireguard-go,
	// and so the memory they hold (queueBatches * batchBufLen, allocated
	// as they are first needed).
	queueBatches = 64
	// batchBufLen holds one largest frame, or many small ones.
	batchBufLen = frag.MaxFrameLen + 2048
	// batchFrames is the most frames one batch carries.
	batchFrames = 64
	// queueWait is how long an enqueue waits for room before it drops:
	// long enough for wireguard-go's reader to drain a batch (so the TAP
	// reader is slowed down rather than dropping), short enough that a
	// stalled tunnel never blocks the port that sends (nor a peer's
	// receiver forwarding transit frames) for long.
	queueWait = 10 * time.Millisecond
	// queueWaitAlone is the wait of a peer whose batches are all the queue
	// holds: nobody else waits behind it, but a receiver forwarding transit
	// frames must not wait for a reader that waits for its buffers.
	queueWaitAlone = 100 * time.Millisecond
)

// outBatch is a run of frames for one peer, copied into one buffer, waiting
// to be split and read by wireguard-go. One channel operation moves it.
type outBatch struct {
	owner  *sender // whose share of the queue it counts against
	dst    Label
	n      int // frames
	used   int // bytes of buf
	frames [batchFrames]struct {
		offload [frag.OffloadLen]byte
		off, n  int
	}
	buf [batchBufLen]byte
}

// fits reports whether a frame of n bytes can still join the batch.
func (b *outBatch) fits(n int) bool { return b.n < batchFrames && b.used+n <= batchBufLen }

// add copies a frame, head (bridge.Frame.Head) and data, into the batch.
func (b *outBatch) add(offload *[frag.OffloadLen]byte, head, data []byte) {
	f := &b.frames[b.n]
	f.offload = *offload
	f.off = b.used
	f.n = copy(b.buf[b.used:], head)
	f.n += copy(b.buf[b.used+f.n:], data)
	b.used += f.n
	b.n++
}

// advertiseUnpacking sets the unpacks flag in every label header, so that
// peers pack small frames for this node (label.go, frag.TypePacked). It is
// off: packing and unpacking work and are tested, but in quick-bench pairs
// beside main the build that packs moved TCP with 4 streams slower in 13 of
// 16 pairs and was no faster with small datagrams than the one that does
// not (README, Benchmarks). A node of this build unpacks what a peer sends
// packed, and packs for a peer that advertises it.
const advertiseUnpacking = false

// virtualTUN is the in-memory tun.Device between the switch and wireguard-go.
// Outbound, peer ports copy frames into batches and queue them, one channel
// operation per batch; wireguard-go's single TUN reader splits them into
// labelled chunks directly into its own buffers. Inbound, wireguard-go
// writes decrypted chunks, which go to reassembly and then to the switch.
//
// The queue holds at most queueBatches batches; when it is full, the peer
// with most of its bytes drops at once, the others wait a little, and then
// drop too (see enqueue and batch).
type virtualTUN struct {
	mtu      int
	maxChunk int // frag chunk bytes per packet: mtu minus the label header
	self     Label
	tos      atomic.Uint32 // the label header's TOS byte: labelUnpacksFlag (tests of older nodes clear it)
	splitter *frag.Splitter

	queue     chan *outBatch
	free      chan *outBatch // batches not in use; allocated up to queueBatches
	allocated atomic.Int32
	// queuedBytes is the frame bytes of all queued batches: a peer with
	// more than half of them, in a full queue, drops at once (batch).
	queuedBytes atomic.Int64
	ctrl        chan ctrlPacket // control messages, ahead of frames
	// pending counts the batches and control messages in queue and ctrl,
	// counted before they are sent: the reader reads its Source only
	// while it is 0 (source.go).
	pending    atomic.Int32
	source     atomic.Pointer[sourceRef]
	reader     atomic.Int32  // readerBusy, readerWaiting, readerWoken
	forwarding atomic.Bool   // the reader forwards frames of its Source
	nudge      chan struct{} // a Source was set
	events     chan tun.Event
	closed     chan struct{}
	closeOnce  sync.Once

	// The reader's state: only wireguard-go's TUN reader goroutine touches it.
	cur    *outBatch
	next   int // frame of cur to split next
	chunks frag.Chunks

	// receive handles a batch of decrypted packets (tunnel.receive).
	receive func(bufs [][]byte, offset int)

	dropsTooBig    atomic.Uint64
	dropsClosed    atomic.Uint64
	dropsCtrl      atomic.Uint64
	dropsFull      atomic.Uint64
	dropsNoSession atomic.Uint64

	packedChunks atomic.Uint64 // packed chunks sent (pack)
	packedFrames atomic.Uint64 // frames in them
}

func newVirtualTUN(mtu int, self Label) *virtualTUN {
	t := &virtualTUN{
		mtu:      mtu,
		maxChunk: mtu - labelHeaderLen,
		self:     self,
		splitter: frag.NewSplitter(),
		queue:    make(chan *outBatch, queueBatches),
		free:     make(chan *outBatch, queueBatches),
		ctrl:     make(chan ctrlPacket, 64),
		nudge:    make(chan struct{}, 1),
		events:   make(chan tun.Event, 1),
		closed:   make(chan struct{}),
	}
	if advertiseUnpacking {
		t.tos.Store(labelUnpacksFlag)
	}
	t.events <- tun.EventUp
	return t
}

// sender queues frames for one peer. Its timer is reused for every wait, so
// waiting allocates nothing; mu serialises the goroutines writing to the
// peer (the TAP reader, receivers forwarding transit frames).
type sender struct {
	mu     sync.Mutex
	timer  *time.Timer
	queued atomic.Int32 // batches of this peer in the queue or being read
	bytes  atomic.Int64 // bytes of frames in those batches
	// peerUnpacks is set while the peer's packets say it unpacks packed
	// chunks (label.go): then the reader packs its small frames.
	peerUnpacks atomic.Bool
}

// enqueue copies frames for dst into batches and queues them. When no batch
// is free (the queue is full) it waits up to queueWait for one, so that a
// fast sender is slowed to wireguard-go's pace; when the peer holds most of
// a full queue, when the wait runs out, or once the device is
// closed, the remaining frames are dropped and counted. It never blocks for
// longer than queueWait per batch, and it retains nothing. It reports false
// once the device is closed.
func (t *virtualTUN) enqueue(s *sender, dst Label, frames []bridge.Frame) bool {
	select {
	case <-t.closed:
		t.dropsClosed.Add(uint64(len(frames)))
		return false
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var b *outBatch
	for i := range frames {
		fr := &frames[i]
		n := len(fr.Head) + len(fr.Data)
		if n > frag.MaxFrameLen {
			t.dropsTooBig.Add(1)
			continue
		}
		if b != nil && !b.fits(n) {
			t.push(b)
			b = nil
		}
		if b == nil {
			var ok bool
			if b, ok = t.batch(s); b == nil {
				if !ok {
					t.dropsClosed.Add(uint64(len(frames) - i))
					return false
				}
				t.dropsFull.Add(uint64(len(frames) - i))
				return true
			}
			b.owner, b.dst = s, dst
		}
		b.add(&fr.Offload, fr.Head, fr.Data)
	}
	if b != nil {
		t.push(b)
	}
	return true
}

// push queues a filled batch. It never blocks: there are no more batches
// than the queue holds.
func (t *virtualTUN) push(b *outBatch) {
	b.owner.bytes.Add(int64(b.used))
	t.queuedBytes.Add(int64(b.used))
	t.pending.Add(1)
	t.queue <- b
	t.wake()
}

// batch returns an empty batch. When none is free it waits up to queueWait
// for one (queueWaitAlone if all queued batches are the peer's), unless the peer holds more than half of the queued bytes and
// other peers have batches queued too: then, or when the wait runs out, it
// returns nil with ok true; when the device closes, nil with ok false.
func (t *virtualTUN) batch(s *sender) (b *outBatch, ok bool) {
	s.queued.Add(1) // undone by release, or here when there is no batch
	select {
	case b = <-t.free:
		return b, true
	default:
	}
	if t.allocated.Add(1) <= queueBatches {
		return new(outBatch), true
	}
	t.allocated.Add(-1)
	if t.forwarding.Load() {
		// The reader itself forwards frames from its Source (or did
		// when this began): no batch comes free until it is done.
		s.queued.Add(-1)
		return nil, true
	}
	// The peer with most of the queued bytes does not wait while other
	// peers have frames queued too: the batches that come free go to them.
	wait := queueWaitAlone
	if s.queued.Load() < t.allocated.Load()-int32(len(t.free)) {
		if s.bytes.Load()*2 > t.queuedBytes.Load() {
			s.queued.Add(-1)
			return nil, true
		}
		wait = queueWait
	}
	if s.timer == nil {
		s.timer = time.NewTimer(wait)
	} else {
		s.timer.Reset(wait)
	}
	ok = true
	select {
	case b = <-t.free:
	case <-s.timer.C:
	case <-t.closed:
		ok = false
	}
	s.timer.Stop()
	if b == nil {
		s.queued.Add(-1)
	}
	return b, ok
}

func (t *virtualTUN) release(b *outBatch) {
	if b.owner != nil {
		b.owner.queued.Add(-1)
		b.owner.bytes.Add(-int64(b.used))
		t.queuedBytes.Add(-int64(b.used))
	}
	b.owner, b.n, b.used = nil, 0, 0
	t.free <- b
}

// sendControl queues a control packet; when the control queue is full the
// packet is dropped (probes are periodic, the next one will do).
func (t *virtualTUN) sendControl(c ctrlPacket) {
	t.pending.Add(1)
	select {
	case t.ctrl <- c:
		t.wake()
	default:
		t.pending.Add(-1)
		t.dropsCtrl.Add(1)
	}
}

// Read fills bufs with labelled chunks. It blocks for the first batch only;
// a batch whose chunks do not all fit this call continues in the next.
func (t *virtualTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) {
		if t.cur == nil {
			var c ctrlPacket
			got := false
			if n == 0 {
				if !t.pull() {
					return 0, os.ErrClosed
				}
				// What pull found queued, without the four-way select
				// (which locks every channel it names: cold cache lines
				// on an idle path); control messages first.
				select {
				case c = <-t.ctrl:
					got = true
				default:
					select {
					case t.cur = <-t.queue:
					default:
						select {
						case c = <-t.ctrl:
							got = true
						case t.cur = <-t.queue:
						case <-t.nudge:
							continue // a Source to read
						case <-t.closed:
							return 0, os.ErrClosed
						}
					}
				}
			} else {
				select {
				case c = <-t.ctrl:
					got = true
				case t.cur = <-t.queue:
				default:
					return n, nil
				}
			}
			t.pending.Add(-1)
			if got {
				pkt := bufs[n][offset:]
				copy(pkt[labelHeaderLen:], c.data[:])
				t.putLabel(pkt, c.dst, labelHeaderLen+probeLen)
				sizes[n] = labelHeaderLen + probeLen
				n++
				continue
			}
			t.next = 0
		}
		if t.chunks.Remaining() == 0 {
			if t.next == t.cur.n {
				t.release(t.cur)
				t.cur = nil
				continue
			}
			if t.cur.owner.peerUnpacks.Load() && t.packs(t.cur, t.next) {
				pkt := bufs[n][offset:]
				m := t.pack(pkt[labelHeaderLen : labelHeaderLen+t.maxChunk])
				t.putLabel(pkt, t.cur.dst, labelHeaderLen+m)
				sizes[n] = labelHeaderLen + m
				n++
				continue
			}
			f := &t.cur.frames[t.next]
			t.next++
			t.chunks = t.splitter.Split(&f.offload, t.cur.buf[f.off:f.off+f.n], t.maxChunk)
			continue
		}
		pkt := bufs[n][offset:]
		if m := t.chunks.Next(pkt[labelHeaderLen : labelHeaderLen+t.maxChunk]); m > 0 {
			t.putLabel(pkt, t.cur.dst, labelHeaderLen+m)
			sizes[n] = labelHeaderLen + m
			n++
		}
	}
	if t.cur != nil && t.chunks.Remaining() == 0 && t.next == t.cur.n {
		t.release(t.cur)
		t.cur = nil
	}
	return n, nil
}

// putLabel writes the label header of a packet of total bytes to dst.
func (t *virtualTUN) putLabel(pkt []byte, dst Label, total int) {
	putLabelHeader(pkt, t.self, dst, total)
	pkt[1] = byte(t.tos.Load())
}

// packs reports whether frames i and i+1 of b fit one packed chunk: then
// the reader packs them, and as many after them as fit (pack).
func (t *virtualTUN) packs(b *outBatch, i int) bool {
	if i+1 >= b.n {
		return false
	}
	f, g := &b.frames[i], &b.frames[i+1]
	if f.n < frag.MinFrameLen || g.n < frag.MinFrameLen {
		return false // Split refuses them
	}
	return frag.PackedHeaderLen+frag.PackedLen(&f.offload, b.buf[f.off:f.off+f.n])+
		frag.PackedLen(&g.offload, b.buf[g.off:g.off+g.n]) <= t.maxChunk
}

// pack writes a packed chunk of the current batch's next frames into dst
// and returns its length; the first two fit (packs).
func (t *virtualTUN) pack(dst []byte) int {
	p := frag.NewPacker(dst)
	for t.next < t.cur.n {
		f := &t.cur.frames[t.next]
		if !p.Add(&f.offload, t.cur.buf[f.off:f.off+f.n]) {
			break
		}
		t.next++
	}
	t.packedChunks.Add(1)
	t.packedFrames.Add(uint64(p.Frames()))
	return p.Len()
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
		if ref := t.source.Load(); ref != nil {
			ref.s.Interrupt() // a reader waiting for it sees closed
		}
	})
	return nil
}

var _ tun.Device = (*virtualTUN)(nil)
