/* SPDX-License-Identifier: MIT
 *
 * l2wg: not part of upstream wireguard-go (see L2WG-PATCH.md).
 */

package device

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.zx2c4.com/wireguard/conn"
)

// The inline path. Upstream hands every packet through three goroutines
// each way: the TUN reader stages it, an encryption worker encrypts it, the
// peer's sequential sender sends it; the UDP receiver reads it, a
// decryption worker decrypts it, the peer's sequential receiver writes it
// to the TUN. On an idle machine each hand-off wakes a sleeping thread, tens
// of microseconds on a virtual machine. Here a small batch of one peer that
// has nothing in the pipeline is encrypted and sent (decrypted and
// delivered) by the goroutine that has it. Busy peers and big batches take
// upstream's pipeline.
//
// Order: a batch goes inline only when none of its peer's containers is
// staged or queued for the sequential sender (receiver); the hooks in
// send.go and receive.go count them (sendQueued, recvQueued) before they
// are queued and after they are done. Inbound, recvMu keeps the inline
// receiver and the sequential receiver apart (the replay filter is not safe
// for concurrent use, and the TUN sees one peer's packets one batch at a
// time, as upstream).

// inlineMaxPackets is the largest batch the inline path takes: an idle
// path's frame (a ping, a full-size frame in two fragments), not a burst.
const inlineMaxPackets = 4

// inlineIdleGap is how long a peer's direction must have had no batch for
// the next to go inline. Under a flood of small batches the pipeline's
// goroutines work in parallel (the UDP reader reads on while a worker
// decrypts and the sequential receiver writes): taking each batch inline
// there would serialise them. After a gap the inline work (tens of
// microseconds) is done before the next batch is due. In nanoseconds;
// tests change it.
var inlineIdleGap atomic.Int64

func init() { inlineIdleGap.Store(int64(200 * time.Microsecond)) }

// inlineEpoch is the origin of the inline path's batch times (monotonic).
var inlineEpoch = time.Now()

// idleBefore records a batch at now and reports whether the previous one
// was at least inlineIdleGap before it. Under a flood it writes last only
// every quarter of the gap (a batch then counts as idle after a quiet
// 3/4 to 1 gap): a write on every batch kept the line that holds last
// moving between the cores of the goroutines that use the peer.
func idleBefore(last *atomic.Int64) bool {
	now := int64(time.Since(inlineEpoch))
	gap := inlineIdleGap.Load()
	prev := last.Load()
	if d := now - prev; d >= 0 && d < gap/4 {
		return false
	}
	last.Store(now)
	return now-prev >= gap
}

// cacheLine pads the inline state of the two directions apart, and from
// the rest of Peer: each is written by the goroutines of its direction.
const cacheLine = 64

// inlinePeer is a peer's inline-path state (Peer.l2wg).
type inlinePeer struct {
	_ [cacheLine]byte

	// The way out: the TUN reader, the sequential sender.
	sendQueued atomic.Int32 // containers in the outbound queue (send.go)
	lastSend   atomic.Int64 // the last batch, since inlineEpoch (idleBefore)
	sendMu     sync.Mutex   // protects sendNonce
	sendNonce  [chacha20poly1305.NonceSize]byte
	sent       atomic.Uint64 // packets that took the inline path
	_          [cacheLine]byte

	// The way in: the UDP receivers, the sequential receiver.
	recvQueued atomic.Int32 // containers in the inbound queue (receive.go)
	lastRecv   atomic.Int64
	recvMu     sync.Mutex // held by the sequential receiver and receiveInline
	recvNonce  [chacha20poly1305.NonceSize]byte
	recvBufs   [inlineMaxPackets][]byte // scratch, under recvMu
	received   atomic.Uint64
	_          [cacheLine]byte
}

// reset forgets the containers flushed by Peer.Start.
func (in *inlinePeer) reset() {
	in.sendQueued.Store(0)
	in.recvQueued.Store(0)
}

// InlineCounts reports how many packets of the peer were sent and received
// by the inline path.
func (peer *Peer) InlineCounts() (sent, received uint64) {
	return peer.l2wg.sent.Load(), peer.l2wg.received.Load()
}

var inlinePadding [PaddingMultiple]byte

// SendInline encrypts and sends a batch the TUN device has just read, when
// all of it is for one peer that has nothing staged or queued and had no
// batch for inlineIdleGap: a packet it
// sends gets size 0, which the TUN reader skips. It takes the batch as
// RoutineReadFromTUN passes it to tun.Device.Read (offset
// MessageTransportHeaderSize, buffers of MaxMessageSize) and must be called
// by the TUN device's Read, before it returns: then no packet read earlier
// can still be on its way to the peer's queue. A batch it does not take is
// left as it was.
func (device *Device) SendInline(bufs [][]byte, sizes []int, offset int) {
	n := len(sizes)
	if n == 0 || offset != MessageTransportHeaderSize || sizes[0] < 1 {
		return
	}
	peer := device.peerForInner(bufs[0][offset : offset+sizes[0]])
	if peer == nil || !idleBefore(&peer.l2wg.lastSend) || n > inlineMaxPackets || !device.isUp() {
		return
	}
	for i, size := range sizes {
		if size < 1 || offset+size+PaddingMultiple+chacha20poly1305.Overhead > cap(bufs[i]) {
			return
		}
		if i > 0 && device.peerForInner(bufs[i][offset:offset+size]) != peer {
			return
		}
	}
	in := &peer.l2wg
	if !peer.isRunning.Load() || len(peer.queue.staged) != 0 || in.sendQueued.Load() != 0 {
		return
	}
	keypair := peer.keypairs.Current()
	if keypair == nil || keypair.sendNonce.Load()+uint64(n) > RejectAfterMessages || time.Since(keypair.created) >= RejectAfterTime {
		return // upstream's SendStagedPackets starts a handshake
	}
	in.sendMu.Lock()
	defer in.sendMu.Unlock()
	first := keypair.sendNonce.Add(uint64(n)) - uint64(n)
	if first+uint64(n) > RejectAfterMessages {
		keypair.sendNonce.Store(RejectAfterMessages)
		return
	}

	// As RoutineEncryption.
	var lens [inlineMaxPackets]int // of the reader's buffers, given back below
	mtu := int(device.tun.mtu.Load())
	for i, size := range sizes {
		lens[i] = len(bufs[i])
		header := bufs[i][:MessageTransportHeaderSize]
		binary.LittleEndian.PutUint32(header[0:4], MessageTransportType)
		binary.LittleEndian.PutUint32(header[4:8], keypair.remoteIndex)
		binary.LittleEndian.PutUint64(header[8:16], first+uint64(i))
		packet := bufs[i][offset : offset+size]
		packet = append(packet, inlinePadding[:calculatePaddingSize(size, mtu)]...)
		binary.LittleEndian.PutUint64(in.sendNonce[4:], first+uint64(i))
		bufs[i] = keypair.send.Seal(header, in.sendNonce[:], packet, nil)
	}

	// As RoutineSequentialSender.
	in.sent.Add(uint64(n))
	peer.timersAnyAuthenticatedPacketTraversal()
	peer.timersAnyAuthenticatedPacketSent()
	err := peer.SendBuffers(bufs)
	peer.timersDataSent()
	for i := range bufs {
		bufs[i] = bufs[i][:lens[i]] // the reader's buffer again (Seal's result starts where it does)
		sizes[i] = 0
	}
	if err != nil {
		var errGSO conn.ErrUDPGSODisabled
		if errors.As(err, &errGSO) {
			device.log.Verbosef(err.Error())
			err = errGSO.RetryErr
		}
	}
	if err != nil {
		device.log.Errorf("%v - Failed to send data packets: %v", peer, err)
		return
	}
	peer.keepKeyFreshSending()
}

// peerForInner is the peer whose allowed IPs hold the packet's destination,
// as RoutineReadFromTUN looks it up.
func (device *Device) peerForInner(packet []byte) *Peer {
	switch packet[0] >> 4 {
	case 4:
		if len(packet) < ipv4.HeaderLen {
			return nil
		}
		return device.allowedips.Lookup(packet[IPv4offsetDst : IPv4offsetDst+net.IPv4len])
	case 6:
		if len(packet) < ipv6.HeaderLen {
			return nil
		}
		return device.allowedips.Lookup(packet[IPv6offsetDst : IPv6offsetDst+net.IPv6len])
	}
	return nil
}

// receiveInline decrypts and delivers a batch just received, when all of it
// is transport data of one peer that has nothing queued for its sequential
// receiver and had no batch for inlineIdleGap: every datagram it takes (delivered, or dropped as the
// sequential receiver would drop it) gets size 0, which
// RoutineReceiveIncoming skips. A batch it does not take is left as it was.
func (device *Device) receiveInline(bufs [][]byte, sizes []int, endpoints []conn.Endpoint) {
	if len(sizes) == 0 || sizes[0] < MessageTransportSize || binary.LittleEndian.Uint32(bufs[0][:4]) != MessageTransportType {
		return
	}
	first := device.indexTable.Lookup(binary.LittleEndian.Uint32(bufs[0][MessageTransportOffsetReceiver:MessageTransportOffsetCounter]))
	if first.peer == nil || !idleBefore(&first.peer.l2wg.lastRecv) || len(sizes) > inlineMaxPackets {
		return
	}
	var (
		peer     *Peer
		keypairs [inlineMaxPackets]*Keypair
	)
	for i, size := range sizes {
		if size < MessageTransportSize || binary.LittleEndian.Uint32(bufs[i][:4]) != MessageTransportType {
			return
		}
		// As RoutineReceiveIncoming.
		value := device.indexTable.Lookup(binary.LittleEndian.Uint32(bufs[i][MessageTransportOffsetReceiver:MessageTransportOffsetCounter]))
		if value.keypair == nil || value.keypair.created.Add(RejectAfterTime).Before(time.Now()) {
			return
		}
		if peer != nil && value.peer != peer {
			return
		}
		peer, keypairs[i] = value.peer, value.keypair
	}
	in := &peer.l2wg
	if !peer.isRunning.Load() || in.recvQueued.Load() != 0 || !in.recvMu.TryLock() {
		return
	}
	defer in.recvMu.Unlock()
	if in.recvQueued.Load() != 0 {
		return
	}

	// As RoutineDecryption and RoutineSequentialReceiver.
	out := in.recvBufs[:0]
	validTailPacket := -1
	dataPacketReceived := false
	rxBytesLen := uint64(0)
	for i, size := range sizes {
		sizes[i] = 0
		keypair := keypairs[i]
		counter := binary.LittleEndian.Uint64(bufs[i][MessageTransportOffsetCounter:MessageTransportOffsetContent])
		content := bufs[i][MessageTransportOffsetContent:size]
		binary.LittleEndian.PutUint64(in.recvNonce[4:12], counter)
		packet, err := keypair.receive.Open(content[:0], in.recvNonce[:], content, nil)
		if err != nil {
			continue
		}
		if !keypair.replayFilter.ValidateCounter(counter, RejectAfterMessages) {
			continue
		}
		validTailPacket = i
		if peer.ReceivedWithKeypair(keypair) {
			peer.SetEndpointFromPacket(endpoints[i])
			peer.timersHandshakeComplete()
			peer.SendStagedPackets()
		}
		rxBytesLen += uint64(len(packet) + MinMessageSize)
		if len(packet) == 0 {
			device.log.Verbosef("%v - Receiving keepalive packet", peer)
			continue
		}
		dataPacketReceived = true
		if packet = device.innerFromPeer(peer, packet); packet == nil {
			continue
		}
		out = append(out, bufs[i][:MessageTransportOffsetContent+len(packet)])
	}
	in.received.Add(uint64(len(sizes)))
	peer.rxBytes.Add(rxBytesLen)
	if validTailPacket >= 0 {
		peer.SetEndpointFromPacket(endpoints[validTailPacket])
		peer.keepKeyFreshReceiving()
		peer.timersAnyAuthenticatedPacketTraversal()
		peer.timersAnyAuthenticatedPacketReceived()
	}
	if dataPacketReceived {
		peer.timersDataReceived()
	}
	if len(out) > 0 {
		_, err := device.tun.device.Write(out, MessageTransportOffsetContent)
		if err != nil && !device.isClosed() {
			device.log.Errorf("Failed to write packets to TUN device: %v", err)
		}
	}
	clear(in.recvBufs[:])
}

// innerFromPeer returns the decrypted packet cut to its IP length, or nil
// when it is malformed or its source is not among the peer's allowed IPs,
// as RoutineSequentialReceiver checks it.
func (device *Device) innerFromPeer(peer *Peer, packet []byte) []byte {
	switch packet[0] >> 4 {
	case 4:
		if len(packet) < ipv4.HeaderLen {
			return nil
		}
		length := int(binary.BigEndian.Uint16(packet[IPv4offsetTotalLength : IPv4offsetTotalLength+2]))
		if length > len(packet) || length < ipv4.HeaderLen {
			return nil
		}
		packet = packet[:length]
		if device.allowedips.Lookup(packet[IPv4offsetSrc:IPv4offsetSrc+net.IPv4len]) != peer {
			device.log.Verbosef("IPv4 packet with disallowed source address from %v", peer)
			return nil
		}
	case 6:
		if len(packet) < ipv6.HeaderLen {
			return nil
		}
		length := int(binary.BigEndian.Uint16(packet[IPv6offsetPayloadLength:IPv6offsetPayloadLength+2])) + ipv6.HeaderLen
		if length > len(packet) {
			return nil
		}
		packet = packet[:length]
		if device.allowedips.Lookup(packet[IPv6offsetSrc:IPv6offsetSrc+net.IPv6len]) != peer {
			device.log.Verbosef("IPv6 packet with disallowed source address from %v", peer)
			return nil
		}
	default:
		device.log.Verbosef("Packet with invalid IP version from %v", peer)
		return nil
	}
	return packet
}
