/* SPDX-License-Identifier: MIT
 *
 * l2wg: not part of upstream wireguard-go (see L2WG-PATCH.md).
 */

package device

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"
)

// batchTUN is a TUN whose Read returns what the test queued as one batch
// (a burst, or a single packet), and calls SendInline as l2wg's TUN does.
type batchTUN struct {
	out  chan [][]byte // batches for the device to read
	in   chan []byte   // packets the device wrote
	rest [][]byte      // of a batch longer than one Read
	dev  atomic.Pointer[Device]
	// discard makes Write count the packets (written) instead of handing
	// on copies: an allocation test's TUN.
	discard atomic.Bool
	written atomic.Uint64
	closed  chan struct{}
	events  chan tun.Event
}

func newBatchTUN() *batchTUN {
	t := &batchTUN{
		out:    make(chan [][]byte, 64),
		in:     make(chan []byte, 4096),
		closed: make(chan struct{}),
		events: make(chan tun.Event, 1),
	}
	t.events <- tun.EventUp
	return t
}

func (t *batchTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(t.rest) == 0 {
		select {
		case t.rest = <-t.out:
		case <-t.closed:
			return 0, os.ErrClosed
		}
	}
	n := 0
	for n < len(bufs) && len(t.rest) > 0 {
		sizes[n] = copy(bufs[n][offset:], t.rest[0])
		t.rest = t.rest[1:]
		n++
	}
	if dev := t.dev.Load(); dev != nil {
		dev.SendInline(bufs[:n], sizes[:n], offset)
	}
	return n, nil
}

func (t *batchTUN) Write(bufs [][]byte, offset int) (int, error) {
	if t.discard.Load() {
		t.written.Add(uint64(len(bufs)))
		return len(bufs), nil
	}
	for _, b := range bufs {
		select {
		case t.in <- append([]byte(nil), b[offset:]...):
		case <-t.closed:
			return 0, os.ErrClosed
		}
	}
	return len(bufs), nil
}

func (t *batchTUN) File() *os.File           { return nil }
func (t *batchTUN) MTU() (int, error)        { return 1420, nil }
func (t *batchTUN) Name() (string, error)    { return "inline", nil }
func (t *batchTUN) Events() <-chan tun.Event { return t.events }
func (t *batchTUN) BatchSize() int           { return 128 }
func (t *batchTUN) Close() error {
	select {
	case <-t.closed:
	default:
		close(t.closed)
		close(t.events)
	}
	return nil
}

type inlinePair struct {
	tuns  [2]*batchTUN
	devs  [2]*Device
	peers [2]*Peer // devs[i]'s peer: the other device
	ips   [2]netip.Addr
	seq   [2]uint64 // next sequence number from each side
	want  [2]uint64 // next sequence number expected at each side
	data  [2]uint64 // padded data bytes sent by each side, as rx_bytes counts them
}

func newInlinePair(t *testing.T) *inlinePair {
	gap := inlineIdleGap.Load()
	inlineIdleGap.Store(0) // inline right behind a burst too: the hardest case for order
	t.Cleanup(func() { inlineIdleGap.Store(gap) })
	cfg, endpointCfg := genConfigs(t)
	p := &inlinePair{}
	for i := range p.devs {
		p.tuns[i] = newBatchTUN()
		p.ips[i] = netip.AddrFrom4([4]byte{1, 0, 0, byte(i + 1)})
		p.devs[i] = NewDevice(p.tuns[i], conn.NewDefaultBind(), NewLogger(LogLevelError, fmt.Sprintf("dev%d: ", i)))
		p.tuns[i].dev.Store(p.devs[i])
		if err := p.devs[i].IpcSet(cfg[i]); err != nil {
			t.Fatal(err)
		}
		if err := p.devs[i].Up(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.devs[i].Close)
		endpointCfg[i^1] = fmt.Sprintf(endpointCfg[i^1], p.devs[i].net.port)
	}
	for i := range p.devs {
		if err := p.devs[i].IpcSet(endpointCfg[i]); err != nil {
			t.Fatal(err)
		}
		for _, peer := range p.devs[i].peers.keyMap {
			p.peers[i] = peer
		}
	}
	return p
}

// packet is an IPv4 packet from side i to the other with a sequence number;
// its length varies with the number.
func (p *inlinePair) packet(i int) []byte {
	seq := p.seq[i]
	p.seq[i]++
	b := make([]byte, 20+8+int(seq%700))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[9] = 17
	src, dst := p.ips[i].As4(), p.ips[i^1].As4()
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	binary.BigEndian.PutUint64(b[20:28], seq)
	p.data[i] += uint64(len(b)+calculatePaddingSize(len(b), 1420)) + MinMessageSize
	return b
}

// send queues a batch of n packets at side i.
func (p *inlinePair) send(i, n int) {
	batch := make([][]byte, n)
	for k := range batch {
		batch[k] = p.packet(i)
	}
	p.tuns[i].out <- batch
}

// expect waits for everything side i sent to arrive at the other side, in
// order, each exactly once.
func (p *inlinePair) expect(t *testing.T, i int) {
	t.Helper()
	r := i ^ 1
	deadline := time.After(10 * time.Second)
	for p.want[r] < p.seq[i] {
		select {
		case b := <-p.tuns[r].in:
			if got := binary.BigEndian.Uint64(b[20:28]); got != p.want[r] {
				t.Fatalf("side %d received packet %d, want %d (reordered or lost)", r, got, p.want[r])
			}
			if want := 20 + 8 + int(p.want[r]%700); len(b) != want {
				t.Fatalf("side %d received packet %d of %d bytes, want %d", r, p.want[r], len(b), want)
			}
			p.want[r]++
		case <-deadline:
			t.Fatalf("side %d: %d of %d packets arrived", r, p.want[r], p.seq[i])
		}
	}
}

// pingPong sends single packets each way, one at a time: an idle path.
func (p *inlinePair) pingPong(t *testing.T, rounds int) {
	t.Helper()
	for range rounds {
		p.send(0, 1)
		p.expect(t, 0)
		p.send(1, 1)
		p.expect(t, 1)
	}
}

// drained waits until neither side has anything staged or queued: the
// next packet either way finds an idle path (on a loaded machine the
// sequential sender of the last burst or keepalive may run late).
func (p *inlinePair) drained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, peer := range p.peers {
		for len(peer.queue.staged) != 0 || peer.l2wg.sendQueued.Load() != 0 || peer.l2wg.recvQueued.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%v: pipeline not drained (staged %d, send queue %d, receive queue %d)", peer,
					len(peer.queue.staged), peer.l2wg.sendQueued.Load(), peer.l2wg.recvQueued.Load())
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// checkCounters waits until each side's tx_bytes equal the other's
// rx_bytes (a keepalive may still be in flight) and checks they hold the
// data sent.
func (p *inlinePair) checkCounters(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for i := range p.peers {
		tx, rx := p.peers[i].txBytes.Load(), p.peers[i^1].rxBytes.Load()
		for tx != rx && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			tx, rx = p.peers[i].txBytes.Load(), p.peers[i^1].rxBytes.Load()
		}
		if tx != rx {
			t.Errorf("side %d sent %d bytes, side %d received %d", i, tx, i^1, rx)
		}
		if rx < p.data[i] {
			t.Errorf("side %d received %d bytes, less than the %d of data sent to it", i^1, rx, p.data[i])
		}
	}
}

func inlineCounts(p *inlinePair) (sent, received [2]uint64) {
	for i, peer := range p.peers {
		sent[i], received[i] = peer.InlineCounts()
	}
	return
}

// TestInlineInterleaved mixes an idle path (single packets, inline) with
// bursts (batches for upstream's pipeline, and single packets right behind
// them while the pipeline is busy): every packet arrives once, in order,
// and the byte counters agree.
func TestInlineInterleaved(t *testing.T) {
	p := newInlinePair(t)
	p.pingPong(t, 10) // handshake, then idle
	sent0, received0 := inlineCounts(p)
	for round := range 20 {
		i := round % 2
		p.send(i, 64+round) // a burst: upstream's pipeline
		for range 8 {       // right behind it: inline once the pipeline is empty
			p.send(i, 1)
		}
		p.send(i, 3)
		p.send(i^1, 1) // the other way meanwhile
		p.expect(t, i)
		p.expect(t, i^1)
		p.pingPong(t, 3)
	}
	sent, received := inlineCounts(p)
	for i := range p.peers {
		if sent[i] == sent0[i] || received[i] == received0[i] {
			t.Errorf("side %d: inline path not taken (sent %d->%d, received %d->%d)", i, sent0[i], sent[i], received0[i], received[i])
		}
		if sent[i] >= p.seq[i] || received[i] >= p.want[i] {
			t.Errorf("side %d: upstream's pipeline not taken (inline sent %d of %d, received %d of %d)", i, sent[i], p.seq[i], received[i], p.want[i])
		}
	}
	t.Logf("inline: sent %v of %v, received %v of %v", sent, p.seq, received, p.want)
	p.checkCounters(t)
}

// TestInlineRekey runs traffic across a new handshake: the new keypair is
// confirmed by the initiator's first data and used inline on both sides,
// and nothing is lost or reordered across the change.
func TestInlineRekey(t *testing.T) {
	p := newInlinePair(t)
	p.pingPong(t, 5)
	for initiator := range 2 {
		old := [2]*Keypair{p.peers[0].keypairs.Current(), p.peers[1].keypairs.Current()}
		// The responder ignores an initiation within HandshakeInitationRate
		// of the last one it took (flood protection): wait that long.
		responder := p.peers[initiator^1]
		for {
			responder.handshake.mutex.RLock()
			last := responder.handshake.lastInitiationConsumption
			responder.handshake.mutex.RUnlock()
			if time.Since(last) > HandshakeInitationRate {
				break
			}
			p.pingPong(t, 1)
		}
		peer := p.peers[initiator]
		peer.handshake.mutex.Lock()
		peer.handshake.lastSentHandshake = time.Now().Add(-RekeyTimeout - time.Second)
		peer.handshake.mutex.Unlock()
		if err := peer.SendHandshakeInitiation(false); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			p.send(initiator, 1) // idle traffic across the change, the responder's confirmation
			p.send(initiator, 40)
			p.send(initiator^1, 1)
			p.expect(t, initiator)
			p.expect(t, initiator^1)
			if p.peers[0].keypairs.Current() != old[0] && p.peers[1].keypairs.Current() != old[1] {
				t.Logf("handshake from %d: replaced after %v, %v", initiator, time.Until(deadline), p.seq)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("handshake from side %d: keypairs not replaced", initiator)
			}
		}
		sent0, received0 := inlineCounts(p)
		for range 10 {
			p.drained(t)
			p.pingPong(t, 1)
		}
		sent, received := inlineCounts(p)
		for i := range p.peers {
			if kp := p.peers[i].keypairs.Current(); kp == old[i] || kp.sendNonce.Load() == 0 {
				t.Errorf("side %d: the new keypair is not in use", i)
			}
			if sent[i]-sent0[i] < 10 || received[i]-received0[i] < 10 {
				t.Errorf("side %d after the handshake from %d: inline sent %d, received %d of 10 packets", i, initiator, sent[i]-sent0[i], received[i]-received0[i])
			}
		}
	}
	p.checkCounters(t)
}

// TestInlineOnlyAfterAGap: while a peer's batches come closer together than
// inlineIdleGap (here an hour, so that no scheduling delay of a loaded
// machine can open a gap), none goes inline: a flood keeps to upstream's
// pipeline, whose goroutines work in parallel. A packet after a quiet
// inlineIdleGap (a sleep of twice it, which is never shorter) goes inline.
func TestInlineOnlyAfterAGap(t *testing.T) {
	p := newInlinePair(t)
	gap := inlineIdleGap.Load()
	t.Cleanup(func() { inlineIdleGap.Store(gap) })
	inlineIdleGap.Store(int64(200 * time.Microsecond))
	p.pingPong(t, 3)
	sent0, received0 := inlineCounts(p)
	inlineIdleGap.Store(int64(time.Hour))
	const flood = 500
	for range flood {
		p.send(0, 1)
	}
	p.expect(t, 0)
	sent, received := inlineCounts(p)
	if sent[0] != sent0[0] || received[1] != received0[1] {
		t.Errorf("flood of %d single packets without a gap: %d sent, %d received inline, want none", flood, sent[0]-sent0[0], received[1]-received0[1])
	}
	p.drained(t)
	inlineIdleGap.Store(int64(200 * time.Microsecond))
	time.Sleep(2 * time.Duration(inlineIdleGap.Load())) // the quiet gap itself
	p.send(0, 1)
	p.expect(t, 0)
	after, afterReceived := inlineCounts(p)
	if after[0] != sent[0]+1 || afterReceived[1] != received[1]+1 {
		t.Errorf("a packet after a gap: inline sent %d, received %d, want 1 and 1", after[0]-sent[0], afterReceived[1]-received[1])
	}
}

// TestInlineAllocatesNothing: a packet sent inline (SendInline, from the
// TUN reader's buffers) and a packet received inline (receiveInline, to the
// TUN) allocate nothing. Side 0's peer is pointed at a socket of the test,
// which keeps what side 0 sends: those datagrams are then side 1's input.
func TestInlineAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items, which then allocate")
	}
	p := newInlinePair(t)
	p.pingPong(t, 3) // the handshake
	p.drained(t)
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := sink.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	remote := p.peers[0].handshake.remoteStatic
	if err := p.devs[0].IpcSet(uapiCfg("public_key", hex.EncodeToString(remote[:]),
		"endpoint", sink.LocalAddr().String())); err != nil {
		t.Fatal(err)
	}

	const runs = 100 // AllocsPerRun calls its function runs+1 times
	offset := MessageTransportHeaderSize
	out := [][]byte{make([]byte, MaxMessageSize)}
	outSizes := []int{0}
	pkt := p.packet(0)
	sent0, _ := p.peers[0].InlineCounts()
	allocs := testing.AllocsPerRun(runs, func() {
		outSizes[0] = copy(out[0][offset:], pkt)
		p.devs[0].SendInline(out, outSizes, offset)
	})
	if sent, _ := p.peers[0].InlineCounts(); sent-sent0 != runs+1 || len(out[0]) != MaxMessageSize {
		t.Fatalf("inline sent %d packets of %d, buffer %d bytes", sent-sent0, runs+1, len(out[0]))
	}
	if allocs != 0 {
		t.Errorf("SendInline: %v allocations per packet", allocs)
	}

	datagrams := make([][]byte, runs+1)
	if err := sink.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := range datagrams {
		b := make([]byte, 2048)
		n, _, err := sink.ReadFromUDP(b)
		if err != nil {
			t.Fatalf("datagram %d of %d: %v", i, len(datagrams), err)
		}
		datagrams[i] = b[:n]
	}
	p.tuns[1].discard.Store(true)
	in := [][]byte{make([]byte, MaxMessageSize)}
	inSizes := []int{0}
	eps := []conn.Endpoint{&conn.StdNetEndpoint{AddrPort: netip.MustParseAddrPort(sink.LocalAddr().String())}}
	next := 0
	_, received0 := p.peers[1].InlineCounts()
	allocs = testing.AllocsPerRun(runs, func() {
		inSizes[0] = copy(in[0], datagrams[next])
		next++
		p.devs[1].receiveInline(in, inSizes, eps)
	})
	if _, received := p.peers[1].InlineCounts(); received-received0 != runs+1 || p.tuns[1].written.Load() != runs+1 {
		t.Fatalf("inline received %d packets of %d, %d written to the TUN", received-received0, runs+1, p.tuns[1].written.Load())
	}
	if allocs != 0 {
		t.Errorf("receiveInline: %v allocations per packet", allocs)
	}
}
