package tunnel

import (
	"bufio"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/device"
)

// Why the tunnel withholds traffic from a peer without a session.
//
// wireguard-go's pools are bounded (Config.Buffers): a packet it cannot
// send yet, for a peer with no session, waits in the peer's staged queue,
// pinning a 64 KiB buffer, until a handshake completes or, for a peer that
// never answers, until wireguard-go gives up after 90 s. A few floods
// towards a dead peer would pin every buffer, and wireguard-go's reader,
// which needs free buffers to read anything, would stall every peer. So
// frames and probes go to wireguard-go only for a peer with a session (a
// handshake within the key lifetime, seen by polling the device, or a
// packet just received from it); for the others they are dropped and
// counted (Drops.NoSession), and a keepalive asks for a handshake instead,
// on the side that speaks first (speaksFirst). A keepalive is staged only
// when nothing else is, so a dead peer pins one buffer at most.

const (
	// sessionMargin ends a session this much before wireguard-go stops
	// using its keys (device.RejectAfterTime), so that nothing is staged
	// in the gap between the two.
	sessionMargin = 10 * time.Second
	// sessionPollFast and sessionPollSlow are how often the device is
	// asked about handshakes, while some peer has no session and while all
	// have one.
	sessionPollFast = 100 * time.Millisecond
	sessionPollSlow = time.Second
	// nudgeEvery is how often withheld traffic asks for a handshake.
	nudgeEvery = 100 * time.Millisecond
)

// hasSession reports whether the peer has a session that can carry
// traffic now.
func (p *PeerPort) hasSession(now time.Time) bool {
	return now.UnixNano() < p.sessionUntil.Load()
}

// HasSession reports whether the peer has a session that can carry traffic
// now: what the tunnel itself checks before it sends (frames and control
// packets to a peer without one are withheld). A reading of one atomic.
func (p *PeerPort) HasSession(now time.Time) bool { return p.hasSession(now) }

// withheld counts n frames or probes not sent to a peer without a session
// and asks for a handshake, at most every nudgeEvery.
func (t *Tunnel) withheld(p *PeerPort, n int, now time.Time) {
	t.vtun.dropsNoSession.Add(uint64(n))
	last := p.lastNudge.Load()
	if now.UnixNano()-last < int64(nudgeEvery) || !p.lastNudge.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if !t.speaksFirst(p, now) {
		return
	}
	if wp := t.dev.LookupPeer(device.NoisePublicKey(p.cfg.PublicKey)); wp != nil {
		p.markDial(now)
		wp.SendKeepalive()
	}
}

// sendControl queues a control packet for p if it has a session.
func (t *Tunnel) sendControl(p *PeerPort, c ctrlPacket, now time.Time) {
	if !p.hasSession(now) {
		t.withheld(p, 1, now)
		return
	}
	t.vtun.sendControl(c)
}

// refreshSessions reads the peers' last handshakes from the device and
// reports whether every peer has a session.
func (t *Tunnel) refreshSessions(now time.Time) bool {
	text, err := t.dev.IpcGet()
	if err != nil {
		return false
	}
	all := true
	var cur *PeerPort
	var sec, nsec int64
	flush := func() {
		if cur == nil {
			return
		}
		if sec != 0 || nsec != 0 {
			cur.handshake.Store(time.Unix(sec, nsec).UnixNano())
		}
		if hs := time.Unix(sec, nsec); (sec != 0 || nsec != 0) && hs.UnixNano() > cur.expired.Load() {
			until := hs.Add(device.RejectAfterTime - sessionMargin).UnixNano()
			if until > cur.sessionUntil.Load() {
				cur.sessionUntil.Store(until)
			}
		}
		if !cur.hasSession(now) {
			all = false
		}
		cur, sec, nsec = nil, 0, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch key {
		case "public_key":
			flush()
			var k [32]byte
			if b, err := hex.DecodeString(value); err == nil && len(b) == len(k) {
				copy(k[:], b)
				cur = t.peers[k]
			}
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(value, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(value, 10, 64)
		}
	}
	flush()
	return all
}

// routineWatchSessions keeps every peer's session flag current.
func (t *Tunnel) routineWatchSessions() {
	defer t.wg.Done()
	wait := time.NewTimer(sessionPollFast)
	defer wait.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-wait.C:
			if t.refreshSessions(now) {
				wait.Reset(sessionPollSlow)
			} else {
				wait.Reset(sessionPollFast)
			}
		}
	}
}
