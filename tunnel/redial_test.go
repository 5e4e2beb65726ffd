package tunnel

import (
	"testing"
	"time"
)

// TestRedialDue: a peer may be redialled once per redialEvery, at most
// redialMax times in a row; a packet from the peer starts the count again.
func TestRedialDue(t *testing.T) {
	tn := &Tunnel{}
	p := &PeerPort{}
	t0 := time.Unix(1000, 0)
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
