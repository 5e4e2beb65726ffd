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
	p.handshake.Store(t0.Add(device.RekeyTimeout + time.Millisecond).UnixNano())
	if !tn.redialDue(p, t0.Add(device.RekeyTimeout+2*time.Millisecond)) {
		t.Fatal("redial not due after a handshake completed since our initiation")
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
