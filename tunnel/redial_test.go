package tunnel

import (
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"golang.zx2c4.com/wireguard/device"
)

// TestRedialDue: a peer may be redialled once per redialEvery, at most
// redialMax times in a row; a packet from the peer starts the count again.
func TestRedialDue(t *testing.T) {
	tn := &Tunnel{}
	p := &PeerPort{}
	p.cfg.PublicKey[0] = 1 // greater than the tunnel's: this side leads redials
	t0 := time.Unix(1000, 0)
	if tn.redialDue(p, t0) {
		t.Fatal("a peer without an endpoint (it dials us) is due")
	}
	p.cfg.Endpoint = "192.0.2.1:51820"
	if !tn.redialDue(p, t0) {
		t.Fatal("a peer never redialled is not due")
	}
	now := t0
	for i := range redialMax {
		if !tn.redialDue(p, now) {
			t.Fatalf("redial %d not due %v after the last", i+1, redialEvery)
		}
		p.lastRedial.Store(now.UnixNano())
		p.redials.Add(1)
		if tn.redialDue(p, now.Add(redialEvery/2)) {
			t.Fatalf("redial %d due again within %v", i+1, redialEvery/2)
		}
		now = now.Add(redialEvery)
	}
	if tn.redialDue(p, now.Add(time.Hour)) {
		t.Errorf("due after %d redials with nothing heard: WireGuard's own retries should take over", redialMax)
	}
	p.lastRx.Store(now.Add(time.Hour).UnixNano())
	if !tn.redialDue(p, now.Add(time.Hour+redialEvery)) {
		t.Error("not due after the peer was heard from again")
	}
	if p.redials.Load() != 0 {
		t.Errorf("redials %d after the peer was heard from; want 0", p.redials.Load())
	}
}

// TestRedialWaitsForOwnDial: a redial never follows this side's own
// initiation (a keepalive to a peer without a session) within redialEvery,
// unless a handshake has completed since: two initiations a millisecond
// apart, the second dropping the first's state, left sessions that carried
// traffic one way only.
func TestRedialWaitsForOwnDial(t *testing.T) {
	tn := &Tunnel{}
	p := &PeerPort{}
	p.cfg.PublicKey[0] = 1 // greater than the tunnel's: this side leads redials
	p.cfg.Endpoint = "192.0.2.1:51820"
	t0 := time.Unix(1000, 0)
	p.markDial(t0)
	if tn.redialDue(p, t0.Add(time.Millisecond)) {
		t.Fatal("redial due 1 ms after our own initiation")
	}
	if !tn.redialDue(p, t0.Add(redialEvery)) {
		t.Fatalf("redial not due %v after our own initiation", redialEvery)
	}
	// The next keepalive within RekeyTimeout sends no initiation
	// (wireguard-go's limit): it is not a dial.
	p.markDial(t0.Add(redialEvery))
	if !tn.redialDue(p, t0.Add(redialEvery+time.Millisecond)) {
		t.Fatal("a keepalive that cannot initiate holds the redial back")
	}
	p.markDial(t0.Add(device.RekeyTimeout))
	if tn.redialDue(p, t0.Add(device.RekeyTimeout+time.Millisecond)) {
		t.Fatal("redial due 1 ms after an initiation RekeyTimeout later")
	}
	hs := t0.Add(device.RekeyTimeout + time.Millisecond)
	p.handshake.Store(hs.UnixNano())
	if p.dialInFlight(hs.Add(time.Millisecond)) {
		t.Fatal("our initiation in flight after a handshake completed since")
	}
	if !tn.redialDue(p, hs.Add(redialSettle)) {
		t.Fatal("redial not due after a handshake completed since our initiation, and settled")
	}
}

// TestRedialLetsASessionSettle: no redial throws away the keys of a
// handshake that completed less than redialSettle plus a round trip ago:
// a port that is down comes up with the first echo under the new keys,
// which on a long or loaded path came later than the next redial (an
// adjacency that stayed down after a cut healed, redialled every 0.5 s).
func TestRedialLetsASessionSettle(t *testing.T) {
	tn := &Tunnel{}
	p := &PeerPort{}
	p.cfg.PublicKey[0] = 1 // greater than the tunnel's: this side leads redials
	p.cfg.Endpoint = "192.0.2.1:51820"
	t0 := time.Unix(1000, 0)
	p.lastRedial.Store(t0.UnixNano())
	p.lastDial.Store(t0.UnixNano())
	p.redials.Store(1)
	rtt := 150 * time.Millisecond
	p.probe.srtt.Store(int64(rtt))
	hs := t0.Add(rtt) // the redial's handshake
	p.handshake.Store(hs.UnixNano())
	for _, d := range []time.Duration{redialEvery, redialSettle / 2, redialSettle + rtt - time.Millisecond} {
		if tn.redialDue(p, hs.Add(d)) {
			t.Errorf("redial due %v after a completed handshake (round trip %v); want none before %v", d, rtt, redialSettle+rtt)
		}
	}
	if !tn.redialDue(p, hs.Add(redialSettle+rtt)) {
		t.Errorf("redial not due %v after the handshake: a session that never answers a probe must be redialled", redialSettle+rtt)
	}
}

// TestRedialEndsTheSession: a redial drops the session's keys, so the peer
// has no session until a new handshake completes (a session flag left set
// would hand frames to wireguard-go, which stages them, pinning its
// bounded buffers, as no key may send them), and the device's record of
// the old handshake does not bring it back; once the peer is reachable
// again, a session comes back.
func TestRedialEndsTheSession(t *testing.T) {
	m, tns := memTunnels(t, 2, func() Switch { return newSinkSwitch() })
	a := tns[0]
	p := a.Peers()[0]
	if !p.hasSession(time.Now()) {
		t.Fatal("no session after the handshake")
	}
	m.nodes[1].cut.Store(true) // the peer goes away: the redial's initiation is lost
	wp := a.dev.LookupPeer(device.NoisePublicKey(p.cfg.PublicKey))
	now := time.Now()
	if !a.redial(p, wp, now) {
		t.Fatal("redial failed")
	}
	if p.hasSession(now) {
		t.Error("session after a redial dropped its keys")
	}
	a.refreshSessions(now)
	if p.hasSession(now) {
		t.Error("session after a refresh: the old handshake carries none after a redial")
	}
	before := a.Drops().NoSession
	p.WriteFrames([]bridge.Frame{{Data: ethFrame(t, 60, 0)}})
	if got := a.Drops().NoSession - before; got != 1 {
		t.Errorf("a frame to the redialled peer: %d withheld (Drops.NoSession), want 1: it went to wireguard-go, which has no key to send it", got)
	}
	m.nodes[1].cut.Store(false)
	waitSessions(t, tns...)
}

// TestRehandshakeOnALongPath: a peer judged down is asked for a new
// handshake every 100 ms (as the mesh's liveness loop does) over a path
// with a 520 ms round trip, through a cut and after it, until an echo of
// one of our probes comes (the port is up again, and the loop stops
// asking). Then the session must carry on: more echoes come, with no
// redial after the first. Without the round trip in dialInFlight, every
// redial threw away the last one's handshake while its response was on
// the way; without Settling, the redial after a completed handshake
// dropped the keys the first echo had just proven.
func TestRehandshakeOnALongPath(t *testing.T) {
	m, tns := memTunnels(t, 2, func() Switch { return newSinkSwitch() })
	a := tns[0]
	p := a.Peers()[0]
	if !a.speaksFirstAlways(p) {
		a = tns[1] // the side that redials
		p = a.Peers()[0]
	}
	for _, nd := range m.nodes {
		nd.delay.Store(int64(260 * time.Millisecond))
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if rtt, _ := p.RTT(); rtt >= 400*time.Millisecond {
			break // the probes know the path's round trip
		}
		if time.Now().After(deadline) {
			t.Fatal("the probes did not measure the delayed path")
		}
		time.Sleep(50 * time.Millisecond) // polling a state with a deadline
	}
	m.nodes[1].cut.Store(true)
	m.nodes[0].cut.Store(true)
	// The cut: the port went down, its redials are lost.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		a.Rehandshake(p)
		time.Sleep(100 * time.Millisecond) // the liveness loop's nudge period
	}
	if p.redials.Load() == 0 {
		t.Fatal("no redial during the cut")
	}
	healed := time.Now()
	m.nodes[1].cut.Store(false)
	m.nodes[0].cut.Store(false)
	var first time.Time
	for deadline := healed.Add(10 * time.Second); ; {
		a.Rehandshake(p)
		if _, reply := p.RTT(); reply.After(healed) {
			first = reply
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no echo in %v after the path came back: %d redials", deadline.Sub(healed), p.redials.Load())
		}
		time.Sleep(100 * time.Millisecond) // the liveness loop's nudge period
	}
	redials := p.redials.Load()
	t.Logf("first echo %v after the path came back (round trip 520 ms); %d redials", first.Sub(healed).Round(time.Millisecond), redials)
	// Two more round trips and probe intervals: echoes go on.
	time.Sleep(2*520*time.Millisecond + 2*DefaultProbeInterval)
	if _, reply := p.RTT(); reply.Sub(first) < 520*time.Millisecond {
		t.Errorf("the last echo %v after the first: the session the first proved did not carry on (redials %d, %d at the first echo; session %v)",
			reply.Sub(first).Round(time.Millisecond), p.redials.Load(), redials, p.hasSession(time.Now()))
	}
}

// TestRehandshakeBothSidesAfterACut: after a cut both sides judge each
// other down and ask for new handshakes every 100 ms, in phase (both
// liveness loops run the same clock), and both heard the other less than
// initiateGrace ago. Once the path is back, both get an echo of a probe
// under new keys within a second. Redials from both sides crossed: each
// side's initiation overwrote the other's handshake state, both responses
// were refused, and the next pair of redials crossed again.
func TestRehandshakeBothSidesAfterACut(t *testing.T) {
	m, tns := memTunnels(t, 2, func() Switch { return newSinkSwitch() })
	bothRehandshakeAfterACut(t, m, tns)
}

// TestRehandshakeBothKeepalive: when both ends keep a keepalive, both lead
// redials; their gaps are drawn at random, so crossed redials do not stay
// in phase, and both get an echo after the cut.
func TestRehandshakeBothKeepalive(t *testing.T) {
	m, tns := memTunnelsWith(t, 2, func() Switch { return newSinkSwitch() }, func(pc *PeerConfig) {
		pc.PersistentKeepalive = 25 * time.Second
	})
	for _, tn := range tns {
		if !tn.leadsRedials(tn.Peers()[0], time.Now()) {
			t.Fatal("a side with a keepalive does not lead redials")
		}
	}
	bothRehandshakeAfterACut(t, m, tns)
}

// bothRehandshakeAfterACut cuts the pair's path for 2 s, with both sides
// asking for new handshakes every 100 ms, in phase, through the cut and
// after it, until both have an echo of a probe sent after it healed.
func bothRehandshakeAfterACut(t *testing.T, m *memNet, tns []*Tunnel) {
	t.Helper()
	for _, nd := range m.nodes {
		nd.delay.Store(int64(5 * time.Millisecond))
	}
	both := func() {
		for _, tn := range tns {
			tn.Rehandshake(tn.Peers()[0])
		}
	}
	m.nodes[0].cut.Store(true)
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		both()
		time.Sleep(100 * time.Millisecond) // the liveness loops' nudge period
	}
	healed := time.Now()
	m.nodes[0].cut.Store(false)
	deadline := healed.Add(10 * time.Second)
	for {
		both()
		done := true
		for _, tn := range tns {
			if _, reply := tn.Peers()[0].RTT(); !reply.After(healed) {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no echo both ways %v after the path came back: redials %d and %d", deadline.Sub(healed),
				tns[0].Peers()[0].redials.Load(), tns[1].Peers()[0].redials.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, tn := range tns {
		_, reply := tn.Peers()[0].RTT()
		t.Logf("side %d: first echo %v after the path came back, %d redials", i, reply.Sub(healed).Round(time.Millisecond), tn.Peers()[0].redials.Load())
	}
}
