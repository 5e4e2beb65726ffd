package tunnel

import (
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// probeTarget builds a Tunnel with one peer and no probes of its own (a
// one-hour interval), so that the test decides which probes are outstanding.
func probeTarget(t *testing.T) (*Tunnel, *PeerPort) {
	t.Helper()
	tn, err := New(Config{PrivateKey: genKey(t), Bind: conn.NewStdNetBind(), Logger: quiet, ProbeInterval: time.Hour}, newFakeSwitch())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	p, err := tn.AddPeer(PeerConfig{Name: "p", PublicKey: PublicKey(genKey(t))})
	if err != nil {
		t.Fatal(err)
	}
	return tn, p
}

func reply(seq uint32, sent int64) []byte {
	var b [probeLen]byte
	putProbe(&b, probeReply, seq, sent)
	return b[:]
}

// TestProbeRepliesOnlyForOutstandingProbes: a reply counts (keeps the port
// up, sets its round trip) only if it answers a probe this node sent and
// that no reply has answered yet, with the send time the probe carried. A
// peer that replies to probes it never received, or that moves the send
// time forward to look closer, is dropped and counted.
func TestProbeRepliesOnlyForOutstandingProbes(t *testing.T) {
	tn, p := probeTarget(t)
	t0 := time.Now()
	unsolicited := func() uint64 { return tn.Drops().UnsolicitedProbe }

	// No probe sent: a reply is refused whatever it says.
	tn.handleProbe(p, reply(1, t0.UnixNano()), t0.Add(time.Millisecond))
	if rtt, last := p.RTT(); rtt != 0 || !last.IsZero() {
		t.Fatalf("a reply to no probe set rtt %v, last reply %v", rtt, last)
	}
	if n := unsolicited(); n != 1 {
		t.Fatalf("unsolicited replies counted %d, want 1", n)
	}

	// Probe 7 sent at t0, answered 30 ms later.
	p.probe.sent(7, t0.UnixNano())
	// A reply with a later send time (to claim a 1 ms round trip) is refused,
	// and leaves the probe outstanding.
	tn.handleProbe(p, reply(7, t0.Add(29*time.Millisecond).UnixNano()), t0.Add(30*time.Millisecond))
	if rtt, _ := p.RTT(); rtt != 0 {
		t.Fatalf("a reply with a forged send time set rtt %v", rtt)
	}
	tn.handleProbe(p, reply(8, t0.UnixNano()), t0.Add(30*time.Millisecond)) // a probe not sent yet
	if n := unsolicited(); n != 3 {
		t.Fatalf("unsolicited replies counted %d, want 3", n)
	}
	tn.handleProbe(p, reply(7, t0.UnixNano()), t0.Add(30*time.Millisecond))
	if rtt, last := p.RTT(); rtt != 30*time.Millisecond || !last.Equal(t0.Add(30*time.Millisecond)) {
		t.Fatalf("the genuine reply: rtt %v, last %v; want 30ms at t0+30ms", rtt, last)
	}
	// The same reply again, later: refused, the sample stays.
	tn.handleProbe(p, reply(7, t0.UnixNano()), t0.Add(time.Second))
	if _, last := p.RTT(); !last.Equal(t0.Add(30 * time.Millisecond)) {
		t.Fatalf("a second reply to probe 7 was taken (last reply %v)", last)
	}
	if n := unsolicited(); n != 4 {
		t.Fatalf("unsolicited replies counted %d, want 4", n)
	}

	// Only the latest probeWindow probes may be answered.
	for seq := uint32(100); seq < 100+probeWindow+1; seq++ {
		p.probe.sent(seq, t0.Add(time.Duration(seq)*time.Millisecond).UnixNano())
	}
	tn.handleProbe(p, reply(100, t0.Add(100*time.Millisecond).UnixNano()), t0.Add(2*time.Second))
	if n := unsolicited(); n != 5 {
		t.Fatalf("a reply to a probe %d probes old was taken", probeWindow)
	}
	last := uint32(100 + probeWindow)
	tn.handleProbe(p, reply(last, t0.Add(time.Duration(last)*time.Millisecond).UnixNano()), t0.Add(2*time.Second))
	if n := unsolicited(); n != 5 {
		t.Fatalf("the reply to the latest probe was refused")
	}
	if d := tn.Drops(); d.Malformed != 0 {
		t.Errorf("replies counted as malformed: %+v", d)
	}
}
