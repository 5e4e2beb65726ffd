package tunnel

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/frag"
)

// Probes: every ProbeInterval the tunnel sends each peer a small control
// message, which the peer echoes at once. The echoes give each peer port a
// liveness signal much faster than WireGuard's handshake timers (a peer
// that misses a few echoes in a row is down) and a smoothed round-trip time
// (for path costs that follow latency).
//
// A probe is a whole frag chunk of type typeProbe, so a node that does not
// know probes drops it and counts it as an unknown type:
//
//	| ver<<4 | typeProbe | kind | 0 | seq uint32 | sent int64 (sender's clock, ns) |

const (
	typeProbe    = 1
	probeRequest = 0
	probeReply   = 1
	probeLen     = frag.WholeHeaderLen + 2 + 4 + 8

	// DefaultProbeInterval is how often each peer is probed.
	DefaultProbeInterval = 100 * time.Millisecond
)

// ctrlPacket is a control chunk waiting for wireguard-go's reader.
type ctrlPacket struct {
	dst  Label
	data [probeLen]byte
}

// probeWindow is how many of a peer's latest probes may still be answered:
// a reply to an older one, to one never sent, or a second reply to one
// already answered is dropped and counted. At the default 100 ms interval
// the window is 6.4 s, far longer than a path's round trip.
const probeWindow = 64

// sentProbe is one probe that may still be answered.
type sentProbe struct {
	seq  uint32
	sent int64 // unix ns; 0: answered, or never sent
}

// probeState is a peer port's view of its probes. Samples come from one
// goroutine (the peer's receiver); readers use the atomics.
type probeState struct {
	seq atomic.Uint32

	// outstanding holds the latest probeWindow probes by seq%probeWindow.
	// The round trip is measured from the time recorded here, never from
	// the reply's copy, so a peer cannot make its path look shorter than
	// it is (and pick its own path cost) or keep its port up with replies
	// to probes it never received.
	outstanding struct {
		sync.Mutex // protects probes
		probes     [probeWindow]sentProbe
	}

	lastReply atomic.Int64 // unix ns of the last echo; 0: never
	srtt      atomic.Int64 // smoothed round trip, ns; 0: no sample yet

	// The least round trip of the current and the previous minRTTWindow:
	// the path's propagation delay without the queueing that load adds.
	minCur, minPrev atomic.Int64
	winStart        atomic.Int64
}

// minRTTWindow is the span of each minimum-RTT bucket.
const minRTTWindow = 10 * time.Second

// sent records a probe as outstanding.
func (s *probeState) sent(seq uint32, at int64) {
	s.outstanding.Lock()
	s.outstanding.probes[seq%probeWindow] = sentProbe{seq: seq, sent: at}
	s.outstanding.Unlock()
}

// answered takes the probe a reply names out of the outstanding ones and
// returns when it was sent; ok is false if no such probe is outstanding:
// never sent, older than the window, already answered, or a reply whose
// copy of the send time is not the one the probe carried.
func (s *probeState) answered(seq uint32, echoed int64) (sent int64, ok bool) {
	s.outstanding.Lock()
	defer s.outstanding.Unlock()
	pr := &s.outstanding.probes[seq%probeWindow]
	if pr.sent == 0 || pr.seq != seq || pr.sent != echoed {
		return 0, false
	}
	sent = pr.sent
	pr.sent = 0
	return sent, true
}

// sample folds one round trip into the smoothed RTT (RFC 6298's 1/8 gain)
// and the windowed minimum.
func (s *probeState) sample(rtt time.Duration, now time.Time) {
	ns := now.UnixNano()
	s.lastReply.Store(ns)
	if old := s.srtt.Load(); old == 0 {
		s.srtt.Store(int64(rtt))
	} else {
		s.srtt.Store(old + (int64(rtt)-old)/8)
	}
	if ns-s.winStart.Load() > int64(minRTTWindow) {
		s.minPrev.Store(s.minCur.Load())
		s.minCur.Store(int64(rtt))
		s.winStart.Store(ns)
	} else if cur := s.minCur.Load(); cur == 0 || int64(rtt) < cur {
		s.minCur.Store(int64(rtt))
	}
}

// MinRTT is the least round trip seen over the last 10 to 20 seconds (0
// before the first echo): what latency-based path costs use, since the
// smoothed RTT also measures the queues that traffic fills.
func (p *PeerPort) MinRTT() time.Duration {
	cur, prev := p.probe.minCur.Load(), p.probe.minPrev.Load()
	if prev != 0 && (cur == 0 || prev < cur) {
		return time.Duration(prev)
	}
	return time.Duration(cur)
}

// Heard is when the last packet from the peer arrived (a probe, a reply, a
// frame), as the tunnel's receiver stamps each batch; zero if none has since
// the port was added. Every such packet is authenticated (WireGuard
// decrypted it under the peer's key): the liveness rule counts any of them
// as life.
func (p *PeerPort) Heard() time.Time {
	if ns := p.lastRx.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Handshake is the peer's last WireGuard handshake as the tunnel last read
// it from the device; zero if none.
func (p *PeerPort) Handshake() time.Time {
	if ns := p.handshake.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// RTT is the peer's smoothed round-trip time (0 before the first echo), and
// when the last echo arrived (zero if none ever did).
func (p *PeerPort) RTT() (time.Duration, time.Time) {
	var last time.Time
	if ns := p.probe.lastReply.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
	return time.Duration(p.probe.srtt.Load()), last
}

func putProbe(b *[probeLen]byte, kind byte, seq uint32, sent int64) {
	b[0] = frag.Version << 4
	b[1] = typeProbe
	b[2] = kind
	b[3] = 0
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint64(b[8:], uint64(sent))
}

// isProbe reports whether a received chunk is a probe.
func isProbe(chunk []byte) bool {
	return len(chunk) >= 2 && chunk[0] == frag.Version<<4 && chunk[1] == typeProbe
}

// handleProbe answers a request and records a reply.
func (t *Tunnel) handleProbe(p *PeerPort, chunk []byte, now time.Time) {
	if len(chunk) < probeLen {
		t.rxMalformed.Add(1)
		return
	}
	seq := binary.BigEndian.Uint32(chunk[4:])
	sent := int64(binary.BigEndian.Uint64(chunk[8:]))
	switch chunk[2] {
	case probeRequest:
		var pkt ctrlPacket
		pkt.dst = p.label
		putProbe(&pkt.data, probeReply, seq, sent)
		t.sendControl(p, pkt, now)
	case probeReply:
		at, ok := p.probe.answered(seq, sent)
		if !ok {
			t.rxUnsolicitedProbe.Add(1)
			return
		}
		rtt := now.Sub(time.Unix(0, at))
		if rtt < 0 || rtt > time.Minute {
			t.rxUnsolicitedProbe.Add(1)
			return
		}
		p.probe.sample(rtt, now)
	default:
		t.rxMalformed.Add(1)
	}
}

// initiateGrace is how long the side of a pair that does not speak first
// waits for the other before it starts a handshake itself.
const initiateGrace = 6 * time.Second

// speaksFirst reports whether this node should send to a peer that may have
// no session yet (which makes WireGuard start a handshake). When both sides
// of a pair start within one round trip of each other, both initiate, the
// two handshakes cross, both fail, and the 5-second retries stay in phase:
// the first session took 14 to 49 s in the lab. So one side speaks first:
// the one with the smaller public key, or the one that keeps the peer's NAT
// open (persistent keepalive). The other answers, and speaks only once the
// peer has been heard from recently, or has been silent for initiateGrace
// (it may be unable to reach us); its retries then fall between the first
// side's.
func (t *Tunnel) speaksFirst(p *PeerPort, now time.Time) bool {
	if t.speaksFirstAlways(p) {
		return true
	}
	since := p.added
	if last := p.lastRx.Load(); last != 0 {
		since = time.Unix(0, last)
	}
	heard := p.lastRx.Load() != 0 && now.Sub(since) < initiateGrace
	return heard || now.Sub(since) >= initiateGrace
}

// speaksFirstAlways reports whether this side speaks first whatever it
// heard: it has the smaller key, or keeps the peer's NAT open.
func (t *Tunnel) speaksFirstAlways(p *PeerPort) bool {
	return bytes.Compare(t.selfPublic[:], p.cfg.PublicKey[:]) < 0 || p.cfg.PersistentKeepalive > 0
}

// routineProbe probes every peer every interval.
func (t *Tunnel) routineProbe(interval time.Duration) {
	defer t.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-tick.C:
			t.mu.Lock()
			for _, p := range t.peers {
				if !t.speaksFirst(p, now) {
					continue
				}
				var pkt ctrlPacket
				pkt.dst = p.label
				seq, at := p.probe.seq.Add(1), now.UnixNano()
				p.probe.sent(seq, at)
				putProbe(&pkt.data, probeRequest, seq, at)
				t.sendControl(p, pkt, now)
			}
			t.mu.Unlock()
		}
	}
}
