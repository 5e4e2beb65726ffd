package mesh

import (
	"errors"
	"testing"
	"time"
)

func TestHelloCodec(t *testing.T) {
	src := [6]byte{0xfe, 1, 2, 3, 4, 5}
	for _, h := range []HelloMsg{
		{Node: 1, Forwarder: true, Interval: 100 * time.Millisecond, Seq: 7},
		{Node: 0xffffffff, Interval: 10 * time.Second, Seq: 0xffffffff},
		{Node: 3, Connected: true, Interval: 20 * time.Millisecond},
	} {
		b := AppendHello(nil, src, h)
		if len(b) != helloFrameLen {
			t.Fatalf("frame of %d bytes, want %d", len(b), helloFrameLen)
		}
		if [6]byte(b[6:12]) != src || [6]byte(b[:6]) != HelloGroup {
			t.Fatalf("addresses % x", b[:12])
		}
		if l := int(b[12])<<8 | int(b[13]); l >= 0x600 {
			t.Fatalf("length field %#x is an EtherType", l)
		}
		got, err := DecodeHello(b)
		if err != nil || got != h {
			t.Fatalf("decode: %+v, %v; want %+v", got, err, h)
		}
	}
	good := AppendHello(nil, src, HelloMsg{Node: 5, Interval: 100 * time.Millisecond})
	bad := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, c := range map[string]struct {
		frame []byte
		want  error
	}{
		"short":       {good[:30], ErrHelloShort},
		"other group": {bad(func(b []byte) []byte { b[5] = 0; return b }), ErrHelloFormat},
		"other snap":  {bad(func(b []byte) []byte { b[19] = 2; return b }), ErrHelloFormat},
		"long length": {bad(func(b []byte) []byte { b[13] = 60; return b }), ErrHelloFormat},
		"version":     {bad(func(b []byte) []byte { b[22] = 2; return b }), ErrHelloVersion},
		"node 0":      {bad(func(b []byte) []byte { copy(b[26:30], []byte{0, 0, 0, 0}); return b }), ErrHelloField},
		"interval 0":  {bad(func(b []byte) []byte { b[24], b[25] = 0, 0; return b }), ErrHelloField},
	} {
		if _, err := DecodeHello(c.frame); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// lanSim is a LAN of Forwarders with time stepped by hand: every node
// sends a hello each interval (with its own phase) and every live node on
// its segment hears it at once.
type lanSim struct {
	t     *testing.T
	now   time.Time
	nodes map[NodeID]*simNode
	// segment of each node: nodes hear each other only on the same one
	seg map[NodeID]int
}

type simNode struct {
	f        *Forwarder
	alive    bool
	nextSend time.Time
}

const simStep = 5 * time.Millisecond

func newLANSim(t *testing.T) *lanSim {
	return &lanSim{t: t, now: time.Unix(1000, 0), nodes: map[NodeID]*simNode{}, seg: map[NodeID]int{}}
}

// start (re)starts node id, its first hello after phase.
func (s *lanSim) start(id NodeID, phase time.Duration) {
	s.nodes[id] = &simNode{f: NewForwarder(ForwarderConfig{Self: id, MAC: [6]byte{0xfe, byte(id)}}, s.now),
		alive: true, nextSend: s.now.Add(phase)}
}

func (s *lanSim) kill(id NodeID) { s.nodes[id].alive = false }

func (s *lanSim) step() {
	s.now = s.now.Add(simStep)
	for _, id := range s.ids() {
		n := s.nodes[id]
		if !n.alive {
			continue
		}
		n.f.Tick(s.now)
		if s.now.Before(n.nextSend) {
			continue
		}
		n.nextSend = n.nextSend.Add(n.f.HelloInterval())
		frame := n.f.Hello(s.now)
		for _, other := range s.ids() {
			o := s.nodes[other]
			if other != id && o.alive && s.seg[other] == s.seg[id] {
				if err := o.f.Receive(frame, s.now); err != nil {
					s.t.Fatal(err)
				}
			}
		}
	}
}

func (s *lanSim) ids() []NodeID {
	var ids []NodeID
	for id := range s.nodes {
		ids = append(ids, id)
	}
	for i := range ids { // a fixed order, so that runs repeat
		for j := i + 1; j < len(ids); j++ {
			if ids[j] < ids[i] {
				ids[i], ids[j] = ids[j], ids[i]
			}
		}
	}
	return ids
}

// forwarders returns the live nodes that forward, per segment.
func (s *lanSim) forwarders() map[int][]NodeID {
	out := map[int][]NodeID{}
	for _, id := range s.ids() {
		if n := s.nodes[id]; n.alive && n.f.Forwarding() {
			out[s.seg[id]] = append(out[s.seg[id]], id)
		}
	}
	return out
}

// run steps for d and fails if a segment ever has two forwarders (beyond
// allowOverlap steps in a row, for a healed split) ; it returns the
// longest time during which segment seg had no forwarder.
func (s *lanSim) run(d time.Duration, seg int, allowOverlap time.Duration) (gap time.Duration) {
	var cur, overlap time.Duration
	for end := s.now.Add(d); s.now.Before(end); {
		s.step()
		fw := s.forwarders()
		for sg, ids := range fw {
			if len(ids) > 1 {
				overlap += simStep
				if overlap > allowOverlap {
					s.t.Fatalf("at %v: segment %d has forwarders %v", s.now.Sub(time.Unix(1000, 0)), sg, ids)
				}
			}
		}
		if len(fw[seg]) == 0 {
			cur += simStep
			gap = max(gap, cur)
		} else {
			cur = 0
		}
	}
	return gap
}

func (s *lanSim) only(seg int) NodeID {
	s.t.Helper()
	fw := s.forwarders()[seg]
	if len(fw) != 1 {
		s.t.Fatalf("segment %d: forwarders %v, want exactly one", seg, fw)
	}
	return fw[0]
}

const inhibition = 3 * DefaultHelloInterval

func TestForwarderElection(t *testing.T) {
	t.Run("single node forwards after the inhibition", func(t *testing.T) {
		s := newLANSim(t)
		s.start(7, 0)
		for s.now.Sub(time.Unix(1000, 0)) < inhibition-simStep {
			s.step()
			if s.nodes[7].f.Forwarding() {
				t.Fatalf("forwards %v after start, before the inhibition", s.now.Sub(time.Unix(1000, 0)))
			}
		}
		if !s.nodes[7].f.Listening(s.now) {
			t.Fatal("not listening before the inhibition's end")
		}
		s.step()
		s.step()
		if s.nodes[7].f.Listening(s.now) {
			t.Fatal("still listening after the inhibition")
		}
		if s.only(0) != 7 {
			t.Fatal("not 7")
		}
	})
	t.Run("two nodes: exactly one, the lowest", func(t *testing.T) {
		s := newLANSim(t)
		s.start(9, 0)
		s.start(4, 30*time.Millisecond)
		s.run(2*time.Second, 0, 0)
		if got := s.only(0); got != 4 {
			t.Fatalf("forwarder %v, want 4", got)
		}
	})
	t.Run("kill the forwarder: the next within hold + inhibition, no return of the old", func(t *testing.T) {
		s := newLANSim(t)
		s.start(4, 0)
		s.start(9, 50*time.Millisecond)
		s.start(12, 20*time.Millisecond)
		s.run(time.Second, 0, 0)
		if s.only(0) != 4 {
			t.Fatal("want 4")
		}
		s.kill(4)
		gap := s.run(time.Second, 0, 0)
		if got := s.only(0); got != 9 {
			t.Fatalf("after the kill: %v, want 9", got)
		}
		if limit := helloHoldFactor*DefaultHelloInterval + inhibition; gap > limit {
			t.Fatalf("gap %v, want at most %v", gap, limit)
		}
		t.Logf("gap after the kill: %v", gap)

		// 4 comes back: it hears 9's flag and does not take over.
		s.start(4, 10*time.Millisecond)
		if gap := s.run(2*time.Second, 0, 0); gap != 0 {
			t.Fatalf("a gap of %v when 4 came back", gap)
		}
		if got := s.only(0); got != 9 {
			t.Fatalf("after 4 came back: %v forwards, want 9 (no preemption)", got)
		}
		if st := s.nodes[4].f.Stats(); st.Takeovers != 0 || st.HellosIn == 0 {
			t.Fatalf("returned 4: %+v", st)
		}
	})
	t.Run("split LAN healed: the higher ID yields at once", func(t *testing.T) {
		s := newLANSim(t)
		s.start(3, 0)
		s.start(8, 40*time.Millisecond)
		s.seg[8] = 1
		s.run(time.Second, 0, 0)
		if s.only(0) != 3 || s.only(1) != 8 {
			t.Fatalf("split: %v", s.forwarders())
		}
		s.seg[8] = 0 // healed
		// Both forward at most until the first hello crosses.
		s.run(time.Second, 0, DefaultHelloInterval)
		if got := s.only(0); got != 3 {
			t.Fatalf("healed: %v, want 3", got)
		}
		if st := s.nodes[8].f.Stats(); st.Yields != 1 {
			t.Fatalf("8 yielded %d times", st.Yields)
		}
	})
	t.Run("only a node connected to the mesh forwards", func(t *testing.T) {
		s := newLANSim(t)
		s.start(4, 0)
		s.start(9, 30*time.Millisecond)
		s.nodes[9].f.SetConnected(true) // 4's tunnels are not up yet
		s.run(time.Second, 0, 0)
		if got := s.only(0); got != 9 {
			t.Fatalf("forwarder %v, want 9, the connected one", got)
		}
		s.nodes[4].f.SetConnected(true) // no preemption once 4 is connected
		s.run(time.Second, 0, 0)
		if got := s.only(0); got != 9 {
			t.Fatalf("forwarder %v after 4 connected, want 9", got)
		}
		s.nodes[9].f.SetConnected(false) // 9 loses the mesh: it yields, 4 takes over
		gap := s.run(time.Second, 0, 0)
		if got := s.only(0); got != 4 {
			t.Fatalf("forwarder %v after 9 lost the mesh, want 4", got)
		}
		if gap > 2*DefaultHelloInterval {
			t.Fatalf("gap %v when 9 yielded", gap)
		}
		t.Logf("gap when the forwarder lost the mesh: %v", gap)
	})
	t.Run("restart of the TAP listens again", func(t *testing.T) {
		s := newLANSim(t)
		s.start(5, 0)
		s.run(time.Second, 0, 0)
		s.nodes[5].f.Restart(s.now)
		if s.nodes[5].f.Forwarding() {
			t.Fatal("forwards right after Restart")
		}
		if gap := s.run(time.Second, 0, 0); gap < inhibition-simStep || gap > inhibition+simStep {
			t.Fatalf("gap %v after a restart, want the inhibition %v", gap, inhibition)
		}
	})
}

func TestForwarderIgnoresBadAndOwn(t *testing.T) {
	now := time.Unix(1, 0)
	f := NewForwarder(ForwarderConfig{Self: 10}, now)
	own := AppendHello(nil, [6]byte{}, HelloMsg{Node: 10, Forwarder: true, Interval: DefaultHelloInterval})
	if err := f.Receive(own, now); err != nil {
		t.Fatal(err)
	}
	if err := f.Receive(own[:20], now); err == nil {
		t.Fatal("short hello accepted")
	}
	f.Tick(now.Add(inhibition))
	if !f.Forwarding() {
		t.Fatal("its own hello (flag set) kept it from forwarding")
	}
	if st := f.Stats(); st.Own != 1 || st.Malformed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A standby whose process stalls (no call for 500 ms, longer than the hold
// time) while the forwarder's hellos wait in its queue must not take over
// when it wakes: the forwarder is live. With no hello queued (the forwarder
// died during the stall) it takes over one interval after the stall.
func TestForwarderStall(t *testing.T) {
	t0 := time.Unix(1000, 0)
	hello := func(seq uint32) []byte {
		return AppendHello(nil, [6]byte{0xfe, 4}, HelloMsg{Node: 4, Forwarder: true, Interval: DefaultHelloInterval, Seq: seq})
	}
	standby := func() *Forwarder {
		f := NewForwarder(ForwarderConfig{Self: 9, MAC: [6]byte{0xfe, 9}}, t0)
		for i := 0; i <= 10; i++ {
			at := t0.Add(time.Duration(i) * DefaultHelloInterval)
			if err := f.Receive(hello(uint32(i+1)), at); err != nil {
				t.Fatal(err)
			}
			f.Tick(at.Add(50 * time.Millisecond))
		}
		if f.Forwarding() {
			t.Fatal("the standby forwards beside a live forwarder")
		}
		return f
	}
	last := t0.Add(10 * DefaultHelloInterval)
	woke := last.Add(500 * time.Millisecond)

	f := standby()
	f.Tick(woke) // the routine runs first after the stall
	if f.Forwarding() {
		t.Fatal("took over on waking from a stall, before reading the queued hellos")
	}
	if err := f.Receive(hello(12), woke.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	for at := woke; at.Before(woke.Add(250 * time.Millisecond)); at = at.Add(10 * time.Millisecond) {
		f.Tick(at)
		if f.Forwarding() {
			t.Fatalf("forwards %v after the stall while the forwarder's last hello is %v old", at.Sub(woke), at.Sub(woke.Add(time.Millisecond)))
		}
	}
	if f.Stats().Stalls != 1 {
		t.Errorf("stalls counted: %d, want 1", f.Stats().Stalls)
	}

	f = standby()
	var took time.Duration
	for at := woke; at.Before(woke.Add(time.Second)); at = at.Add(10 * time.Millisecond) {
		f.Tick(at)
		if f.Forwarding() {
			took = at.Sub(woke)
			break
		}
	}
	if took < DefaultHelloInterval || took > DefaultHelloInterval+10*time.Millisecond {
		t.Errorf("the forwarder died during the stall: took over %v after it, want one interval (%v)", took, DefaultHelloInterval)
	}
}
