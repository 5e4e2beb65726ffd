package node

import (
	"testing"
	"time"
)

// span is an interval of simulated time.
type span struct{ from, to time.Duration }

func (s span) holds(t time.Duration) bool { return t >= s.from && t < s.to }

// liveSim drives liveRule the way routineMesh does, in simulated time: the
// loop wakes every tick or at the instant the rule asks for, and the peer
// sends its probes and echoes ours every interval (a loaded peer also sends
// frames). Our process may stall: then neither the loop nor the receivers
// run, and what arrived meanwhile is stamped when the receivers run again,
// after the loop's first wake (the worst order).
type liveSim struct {
	interval time.Duration // both sides' probes
	rtt      time.Duration
	frames   time.Duration // a loaded peer sends a frame this often; 0: idle
	echoLag  time.Duration // the peer's echoes queue this long behind its frames
	// nothing from the peer arrives in silent (a cut while it lasts, a
	// peer that stalls), no echo in noEcho (a path that carries only the
	// other way), and from dead on nothing at all.
	silent, noEcho []span
	dead           time.Duration
	// peerStalls: the peer's process does not run; what it would have
	// sent meanwhile goes out when it runs again.
	peerStalls  []span
	stalls      []span // our process does not run
	neverEchoes bool   // an older l2wg: no probes
	neverHeard  bool   // ... and nothing from it arrives (a session one way only)
	end         time.Duration
	// Other peers are heard every few ms, except in shared (where the
	// peer is silent too: a stall of the network or of our receivers);
	// solo: the peer is the only one.
	shared []span
	solo   bool
}

// arrivals lists when packets from the peer arrive, and which are echoes.
func (s liveSim) arrivals() (heard, echoes []time.Duration) {
	in := func(t time.Duration, sp []span) bool {
		for _, x := range sp {
			if x.holds(t) {
				return true
			}
		}
		return false
	}
	lost := func(t time.Duration) bool { return (s.dead > 0 && t >= s.dead) || in(t, s.silent) || in(t, s.shared) }
	if s.neverEchoes { // it sends frames now and then, and answers no probe
		for t := time.Duration(0); t < s.end && !s.neverHeard; t += time.Second {
			heard = append(heard, t)
		}
		return heard, nil
	}
	defer func() { // the peer's stalls hold back what it sends
		for _, list := range [][]time.Duration{heard, echoes} {
			for i, t := range list {
				for _, st := range s.peerStalls {
					if st.holds(t) {
						list[i] = st.to
					}
				}
			}
		}
	}()
	// The peer's probes, at a phase of its own; echoes of ours (ours leave
	// on time unless we stall: then at the stall's end).
	for t := s.interval / 3; t < s.end; t += s.interval {
		if !lost(t) {
			heard = append(heard, t)
		}
	}
	for t := time.Duration(0); t < s.end; t += s.interval {
		sent := t
		for _, st := range s.stalls {
			if st.holds(sent) {
				sent = st.to
			}
		}
		at := sent + s.rtt + s.echoLag
		if !lost(at) && !in(at, s.noEcho) {
			heard = append(heard, at)
			echoes = append(echoes, at)
		}
	}
	if s.frames > 0 {
		for t := time.Duration(0); t < s.end; t += s.frames {
			if !lost(t) {
				heard = append(heard, t)
			}
		}
	}
	return heard, echoes
}

// run returns the instants at which the peer went down and came up again.
func (s liveSim) run(t *testing.T) (downs, ups []time.Duration, everUp bool) {
	t.Helper()
	const tick = meshTick
	rule := newLiveRule(s.interval, 3)
	t0 := time.Unix(1_700_000_000, 0)
	heard, echoes := s.arrivals()
	stamp := func(at time.Duration) time.Duration { // when the receivers see it
		for _, st := range s.stalls {
			if st.holds(at) {
				return st.to + 2*time.Millisecond
			}
		}
		return at
	}
	latest := func(list []time.Duration, now time.Duration) time.Time {
		var best time.Duration = -1
		for _, at := range list {
			if st := stamp(at); st <= now && st > best {
				best = st
			}
		}
		if best < 0 {
			return time.Time{}
		}
		return t0.Add(best)
	}
	var others []time.Duration
	for t := time.Duration(0); t < s.end && !s.solo; t += 5 * time.Millisecond {
		shared := false
		for _, x := range s.shared {
			shared = shared || x.holds(t)
		}
		if !shared {
			others = append(others, t)
		}
	}
	var pl, other peerLive
	var clock loopClock
	clock.arm(t0.Add(tick), t0)
	up, first := false, true
	for now := tick; now < s.end; {
		onTime := clock.wake(t0.Add(now))
		o := liveObs{heard: latest(heard, now), reply: latest(echoes, now), rtt: s.rtt}
		rule.measure(&pl, o, t0.Add(now), &clock)
		alone := true
		if !s.solo {
			last := latest(others, now)
			rule.measure(&other, liveObs{heard: last, reply: last, rtt: s.rtt}, t0.Add(now), &clock)
			alone = !rule.heardLately(&other)
		}
		ok, next := rule.judge(&pl, o, t0.Add(now), &clock, onTime, alone)
		everUp = everUp || ok
		if first { // the start: nothing heard yet, then the first packet
			up, first = ok, !ok
		} else if ok != up {
			if ok {
				ups = append(ups, now)
			} else {
				downs = append(downs, now)
			}
			up = ok
		}
		due := now + tick
		if !next.IsZero() {
			due = min(due, next.Sub(t0))
		}
		due = max(due, now+time.Millisecond)
		clock.arm(t0.Add(due), t0.Add(now))
		now = due
		for _, st := range s.stalls { // the loop wakes when the stall ends
			if st.holds(now) {
				now = st.to
			}
		}
	}
	return downs, ups, everUp
}

func TestLiveRule(t *testing.T) {
	const ms = time.Millisecond
	idle := liveSim{interval: 100 * ms, rtt: 20 * ms, end: 5 * time.Second}
	with := func(f func(*liveSim)) liveSim { s := idle; f(&s); return s }
	// A cut's or a death's verdict: 0.3 s after the last packet before it
	// (at most one idle gap earlier), plus the confirmation.
	downAfter := func(at time.Duration) [2]time.Duration {
		return [2]time.Duration{at + 200*ms, at + 300*ms + liveConfirm + 2*ms}
	}
	tests := []struct {
		name string
		sim  liveSim
		down [][2]time.Duration // windows in which each down must fall; none: never down
		ups  int                // how many times it comes back
		// neverUp: the peer never counts as answering
		neverUp bool
	}{
		{name: "idle live peer", sim: idle},
		{name: "older peer that never echoes", sim: with(func(s *liveSim) { s.neverEchoes = true })},
		{name: "older peer never heard", sim: with(func(s *liveSim) { s.neverEchoes, s.neverHeard = true, true }), neverUp: true},
		{name: "dead peer", sim: with(func(s *liveSim) { s.dead = 2 * time.Second }), down: [][2]time.Duration{downAfter(2 * time.Second)}},
		{name: "dead peer, long round trip", sim: with(func(s *liveSim) { s.rtt = 150 * ms; s.dead = 2 * time.Second }),
			down: [][2]time.Duration{downAfter(2 * time.Second)}},
		{name: "cut then heal", sim: with(func(s *liveSim) { s.silent = []span{{2 * time.Second, 3 * time.Second}} }),
			down: [][2]time.Duration{downAfter(2 * time.Second)}, ups: 1},
		{name: "cut of a loaded link", sim: with(func(s *liveSim) { s.frames = ms; s.silent = []span{{2 * time.Second, 4 * time.Second}} }),
			down: [][2]time.Duration{{2*time.Second + 300*ms, 2*time.Second + 300*ms + liveConfirm + 2*ms}}, ups: 1},
		{name: "loaded peer, echoes 250 ms late behind its frames", sim: with(func(s *liveSim) { s.frames = ms; s.echoLag = 250 * ms })},
		{name: "loaded peer, echoes lost for 0.5 s", sim: with(func(s *liveSim) { s.frames = ms; s.noEcho = []span{{time.Second, 1500 * ms}} })},
		{name: "path that carries only the other way", sim: with(func(s *liveSim) { s.frames = ms; s.noEcho = []span{{2 * time.Second, 5 * time.Second}} }),
			down: [][2]time.Duration{{2*time.Second + 500*ms, 2*time.Second + 620*ms + liveConfirm + 2*ms}}},
		{name: "peer stalls 150 ms", sim: with(func(s *liveSim) { s.peerStalls = []span{{time.Second, 1150 * ms}, {3 * time.Second, 3150 * ms}} })},
		{name: "peer stalls 190 ms", sim: with(func(s *liveSim) { s.peerStalls = []span{{time.Second, 1190 * ms}, {3 * time.Second, 3190 * ms}} })},
		{name: "loaded peer stalls 290 ms", sim: with(func(s *liveSim) { s.frames = ms; s.peerStalls = []span{{time.Second, 1290 * ms}} })},
		// A peer that stalls past the limit is taken for dead.
		{name: "peer stalls 400 ms", sim: with(func(s *liveSim) { s.peerStalls = []span{{time.Second, 1400 * ms}} }),
			down: [][2]time.Duration{{time.Second + 200*ms, time.Second + 300*ms + liveConfirm + 2*ms}}, ups: 1},
		// Nothing from anyone for 500 ms (our uplink, our receivers, or
		// in the lab the relay that plays the network): no peer goes down.
		{name: "every peer silent 500 ms", sim: with(func(s *liveSim) { s.shared = []span{{time.Second, 1500 * ms}, {3 * time.Second, 3500 * ms}} })},
		{name: "every peer silent 500 ms, loaded", sim: with(func(s *liveSim) { s.frames = ms; s.shared = []span{{time.Second, 1500 * ms}} })},
		// ... but for longer, it does: by the longer limit.
		{name: "every peer silent 2 s", sim: with(func(s *liveSim) { s.shared = []span{{time.Second, 3 * time.Second}} }),
			down: [][2]time.Duration{{time.Second + 500*ms, time.Second + 600*ms + liveConfirm + 2*ms}}, ups: 1},
		{name: "sole peer dies", sim: with(func(s *liveSim) { s.solo = true; s.dead = 2 * time.Second }),
			down: [][2]time.Duration{{2*time.Second + 500*ms, 2*time.Second + 600*ms + liveConfirm + 2*ms}}},
		{name: "sole peer stalls 400 ms", sim: with(func(s *liveSim) { s.solo = true; s.peerStalls = []span{{time.Second, 1400 * ms}} })},
		// After a silence of everyone, the peer's own silence counts from
		// when the others were heard again: a peer that died in it goes down
		// the short limit after that, or when its echoes are overdue (here
		// 0.6 s + the round trip after the last one, 1.92 s), if sooner.
		{name: "peer dies in a silence of everyone", sim: with(func(s *liveSim) {
			s.shared = []span{{2 * time.Second, 2300 * ms}}
			s.dead = 2100 * ms
		}), down: [][2]time.Duration{{1920*ms + 600*ms + 20*ms, 2*time.Second + 300*ms + 300*ms + liveConfirm + 2*ms}}},
		{name: "we stall 150 ms", sim: with(func(s *liveSim) { s.stalls = []span{{time.Second, 1150 * ms}} })},
		{name: "we stall 400 ms", sim: with(func(s *liveSim) { s.stalls = []span{{time.Second, 1400 * ms}, {3 * time.Second, 3400 * ms}} })},
		{name: "we stall 2 s", sim: with(func(s *liveSim) { s.stalls = []span{{time.Second, 3 * time.Second}} })},
		{name: "we stall 200 ms, loaded", sim: with(func(s *liveSim) { s.frames = ms; s.stalls = []span{{time.Second, 1200 * ms}} })},
		{name: "we stall in many short stalls", sim: with(func(s *liveSim) {
			for at := time.Second; at < 3*time.Second; at += 60 * ms {
				s.stalls = append(s.stalls, span{at, at + 45*ms})
			}
		})},
		// The peer dies as we stall 400 ms: the time we did not run is not
		// silence, so it goes down 0.3 s of our own running time after its
		// last packet.
		{name: "peer dies as we stall", sim: with(func(s *liveSim) { s.dead = 2 * time.Second; s.stalls = []span{{2 * time.Second, 2400 * ms}} }),
			down: [][2]time.Duration{{2*time.Second + 400*ms + 200*ms, 2*time.Second + 400*ms + 300*ms + 2*liveConfirm + 2*ms}}},
		// A peer that went down comes back with a round trip, not with any
		// one packet: its own probes arrive, its echoes do not.
		{name: "back only with an echo", sim: with(func(s *liveSim) {
			s.silent = []span{{time.Second, 2 * time.Second}}
			s.noEcho = []span{{time.Second, 3 * time.Second}}
		}), down: [][2]time.Duration{downAfter(time.Second)}, ups: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			downs, ups, everUp := tc.sim.run(t)
			if everUp == tc.neverUp {
				t.Errorf("answering at some point: %v, want %v", everUp, !tc.neverUp)
			}
			if len(downs) != len(tc.down) {
				t.Fatalf("downs at %v, want %d in %v", downs, len(tc.down), tc.down)
			}
			for i, d := range downs {
				if w := tc.down[i]; d < w[0] || d > w[1] {
					t.Errorf("down at %v, want within %v", d, w)
				}
			}
			if len(ups) != tc.ups {
				t.Errorf("back up at %v, want %d times", ups, tc.ups)
			}
		})
	}
}

// TestLiveRuleUpOnlyWithEcho pins when a peer that went down comes back:
// in "back only with an echo" its probes arrive from 2 s and its echoes
// from 3 s.
func TestLiveRuleUpOnlyWithEcho(t *testing.T) {
	const ms = time.Millisecond
	s := liveSim{interval: 100 * ms, rtt: 20 * ms, end: 5 * time.Second,
		silent: []span{{time.Second, 2 * time.Second}}, noEcho: []span{{time.Second, 3 * time.Second}}}
	_, ups, _ := s.run(t)
	if len(ups) != 1 || ups[0] < 3*time.Second || ups[0] > 3*time.Second+s.rtt+meshTick {
		t.Fatalf("back up at %v, want once, at the first echo after 3s", ups)
	}
}

// TestLoopClock: a late wake, or long work between a wake and the next arm,
// is a stall; stalledSince counts the part of a window they cover.
func TestLoopClock(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var c loopClock
	c.arm(at(20), at(0))
	if !c.wake(at(23)) {
		t.Fatal("3 ms late counted as a stall")
	}
	c.arm(at(43), at(23))
	if c.wake(at(143)) {
		t.Fatal("100 ms late counted as on time")
	}
	c.arm(at(163), at(193)) // 50 ms of work
	tests := []struct {
		since, now int
		want       int
	}{
		{0, 300, 150},
		{100, 150, 50},
		{150, 300, 43},
		{200, 300, 0},
		{0, 43, 0},
	}
	for _, tc := range tests {
		if got := c.stalledSince(at(tc.since), at(tc.now)); got != time.Duration(tc.want)*time.Millisecond {
			t.Errorf("stalled in [%d, %d] ms: %v, want %d ms", tc.since, tc.now, got, tc.want)
		}
	}
}
