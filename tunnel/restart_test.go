package tunnel

import (
	"fmt"
	"testing"
	"time"
)

// nudgeLoop does what the node's liveness loop does for a tunnel's peers
// (node/liveness.go): every 100 ms, a handshake request for a peer without
// a session, a new handshake for one whose probes go unanswered.
func nudgeLoop(t *testing.T, tn *Tunnel) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				for _, p := range tn.Peers() {
					if !p.HasSession(now) {
						tn.Nudge(p)
					} else if rtt, last := p.RTT(); !last.IsZero() && now.Sub(last) >= 3*DefaultProbeInterval+rtt {
						tn.Rehandshake(p)
					}
				}
			}
		}
	}()
}

// TestSessionAfterRestart: a peer killed, away for longer than the redials
// last, and restarted with the same key gets a session with the survivor
// again within a few seconds, whichever side speaks first.
func TestSessionAfterRestart(t *testing.T) {
	for _, survivorFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("survivor speaks first %v", survivorFirst), func(t *testing.T) {
			m := newMemNet(2)
			keys := [2][32]byte{genKey(t), genKey(t)}
			pub := [2][32]byte{PublicKey(keys[0]), PublicKey(keys[1])}
			if (string(pub[0][:]) < string(pub[1][:])) != survivorFirst {
				keys[0], keys[1] = keys[1], keys[0]
			}
			start := func(i int) *Tunnel {
				tn, err := New(Config{PrivateKey: keys[i], ListenPort: i + 1, Bind: m.bind(i), Logger: quiet}, newSinkSwitch())
				if err != nil {
					t.Fatal(err)
				}
				j := 1 - i
				if _, err := tn.AddPeer(PeerConfig{Name: fmt.Sprint(j), PublicKey: PublicKey(keys[j]), Endpoint: fmt.Sprintf("127.0.0.1:%d", j+1)}); err != nil {
					t.Fatal(err)
				}
				if err := tn.Up(); err != nil {
					t.Fatal(err)
				}
				return tn
			}
			survivor, peer := start(0), start(1)
			t.Cleanup(func() { survivor.Close() })
			nudgeLoop(t, survivor)
			waitSessions(t, survivor, peer)
			// Probes answered: the survivor knows the peer answers.
			sp := survivor.Peers()[0]
			deadline := time.Now().Add(5 * time.Second)
			for _, last := sp.RTT(); last.IsZero(); _, last = sp.RTT() {
				if time.Now().After(deadline) {
					t.Fatal("no probe answered")
				}
				time.Sleep(10 * time.Millisecond)
			}
			// Killed, and away for longer than the redials last.
			m.nodes[1].cut.Store(true)
			peer.Close()
			time.Sleep(redialEvery)
			sp.redials.Store(redialMax)
			sp.lastRedial.Store(time.Now().UnixNano())
			m.nodes[1].cut.Store(false)
			peer = start(1)
			t.Cleanup(func() { peer.Close() })
			nudgeLoop(t, peer)
			restarted := time.Now()
			pp := peer.Peers()[0]
			for {
				now := time.Now()
				if pp.HasSession(now) && sp.HasSession(now) {
					if _, last := sp.RTT(); last.After(restarted) {
						break
					}
				}
				if now.Sub(restarted) > 10*time.Second {
					t.Fatalf("no session with the restarted peer after %v (survivor %v, restarted %v)", now.Sub(restarted), sp.HasSession(now), pp.HasSession(now))
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("session and probe answers again %v after the restart", time.Since(restarted).Round(time.Millisecond))
		})
	}
}
