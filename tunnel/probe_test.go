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

// TestProbeAnswering: a peer stops answering only when probe_loss probes in
// a row, sent after the latest one it answered, are each overdue (their
// own send time plus the round trip and a margin); one lost probe or a
// late reply never takes it down, and a reply to any overdue probe brings
// it back.
func TestProbeAnswering(t *testing.T) {
	tn, p := probeTarget(t)
	const loss, interval, rtt = 3, 100 * time.Millisecond, 10 * time.Millisecond
	t0 := time.Unix(1_700_000_000, 0)
	sendAt := func(seq uint32) time.Time { return t0.Add(time.Duration(seq) * interval) }
	send := func(seq uint32) {
		p.probe.seq.Store(seq)
		p.probe.sent(seq, sendAt(seq).UnixNano())
	}
	answer := func(seq uint32, after time.Duration) {
		tn.handleProbe(p, reply(seq, sendAt(seq).UnixNano()), sendAt(seq).Add(after))
	}
	answering := func(now time.Time) (bool, time.Time) { return p.Answering(now, loss) }

	// Never answered: judged by its session alone.
	send(1)
	if ok, _ := answering(sendAt(50)); !ok {
		t.Fatal("a peer that never answered a probe was judged down")
	}
	// Steady answers, then probe 11 lost: 12 answered late (but within the
	// window), so nothing is overdue for long.
	for seq := uint32(2); seq <= 10; seq++ {
		send(seq)
		answer(seq, rtt)
	}
	wait := p.probe.overdueAfter()
	if wait < rtt+probeMargin {
		t.Fatalf("overdue after %v, want at least rtt+margin %v", wait, rtt+probeMargin)
	}
	send(11)
	send(12)
	if ok, until := answering(sendAt(12).Add(50 * time.Millisecond)); !ok || !until.IsZero() {
		t.Fatalf("two unanswered probes: answering %v until %v, want true and unknown", ok, until)
	}
	answer(12, 3*rtt)
	send(13)
	ok, until := answering(sendAt(13).Add(rtt))
	if !ok || !until.IsZero() {
		t.Fatalf("after one lost probe: answering %v until %v, want true and unknown", ok, until)
	}

	// A cut after probe 13 was answered: 14, 15, 16 are swallowed. Down
	// exactly when 16 is overdue, not one round trip later.
	answer(13, rtt)
	send(14)
	send(15)
	send(16)
	wait = p.probe.overdueAfter()
	want := sendAt(16).Add(wait)
	ok, until = answering(want.Add(-time.Millisecond))
	if !ok || !until.Equal(want) {
		t.Fatalf("just before the third probe is overdue: answering %v until %v, want true until %v", ok, until, want)
	}
	if ok, _ := answering(want); ok {
		t.Fatalf("three probes in a row overdue, still answering")
	}
	// A late reply to one of them: answering again.
	answer(15, wait+50*time.Millisecond)
	if ok, _ := answering(want.Add(50 * time.Millisecond)); !ok {
		t.Fatalf("a reply to an overdue probe did not bring the peer back")
	}
	// An older reply (14, now behind 15) does not move the count back.
	answer(14, wait+200*time.Millisecond)
	send(17)
	send(18)
	if ok, until := answering(sendAt(18).Add(wait - time.Millisecond)); !ok || !until.Equal(sendAt(18).Add(p.probe.overdueAfter())) {
		t.Fatalf("probes 16-18 after the answered 15: answering %v until %v", ok, until)
	}

	// Silence for longer than the window: down.
	for seq := uint32(19); seq < 19+probeWindow; seq++ {
		send(seq)
	}
	if ok, _ := answering(sendAt(19 + probeWindow)); ok {
		t.Fatalf("%d probes unanswered, still answering", probeWindow)
	}
}
