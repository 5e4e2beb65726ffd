package node

import (
	"log/slog"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/tunnel"
)

// liveness follows the peers for the spanning tree and the mesh: their
// WireGuard sessions, what arrives from them (liveRule), and their round
// trips for the auto path costs.
type liveness struct {
	tun      *tunnel.Tunnel
	st       *spanning.Tree
	costs    *autoCosts
	log      *slog.Logger
	interval time.Duration // tunnel.probe_interval
	loss     int           // tunnel.probe_loss

	rule  liveRule
	peers map[bridge.PortID]*peerLive
	clock loopClock
}

func newLiveness(tun *tunnel.Tunnel, log *slog.Logger, interval time.Duration, loss int) *liveness {
	return &liveness{tun: tun, log: log, interval: interval, loss: loss,
		rule: newLiveRule(interval, loss), peers: map[bridge.PortID]*peerLive{}}
}

// The liveness rule. Both sides of a pair probe every probe_interval and
// echo each other's probes at once, so a live peer sends us something at
// least every interval (about every half interval when idle, far more
// often when it carries traffic), and every authenticated packet from it
// counts as life: its probes, its echoes of ours, its frames. A peer whose
// probes were ever answered goes down once nothing at all arrived from it
// for probe_loss x probe_interval (liveRule.silence, 0.3 s by default)
// while other peers are heard; or for twice that (liveRule.alone, 0.6 s)
// when no other peer is heard either; or when no echo of ours came for
// twice that plus one round trip (a path that carries only the other way).
// So a cut or a dead peer is seen 0.3 s after its last packet, whatever the
// path's round trip (counting from the last echo, as before, cost the
// round trip on top); one lost probe, or echoes late behind traffic,
// change nothing.
//
// A silence that every peer shares is not any one peer's failure: this
// node's receivers or its uplink stalled (or, in the lab, the process that
// plays the network), and with no peer heard there is no other path to move
// traffic to; the neighbours, which hear their other peers, judge the
// failure at once. A node with a single peer judges it by the longer limit
// too.
//
// The rule is also stall-aware: time during which the loop that applies it
// was not scheduled (it woke late, or its work took long: loopClock) is not
// counted as silence, since the goroutines that receive the peer's packets
// most likely did not run either, and the packets wait in the socket. A
// silence over the limit is confirmed liveConfirm later, after the
// receivers have had the chance to run, by a loop that woke on time. A
// peer that went down comes back up only with a new echo (a round trip
// proven since), not with any one packet.
type liveRule struct {
	silence time.Duration // nothing from the peer this long while others are heard: down
	alone   time.Duration // nothing from the peer this long, others silent too: down
	replies time.Duration // no echo this long (plus the round trip): down
	confirm time.Duration
}

// liveConfirm is how long a silence over the limit waits for the receive
// goroutines before it counts; stallSlack is how late a wake may be (or how
// long its work may take) and still count as on time.
const (
	liveConfirm = 10 * time.Millisecond
	stallSlack  = 5 * time.Millisecond
)

func newLiveRule(interval time.Duration, loss int) liveRule {
	d := time.Duration(loss) * interval
	return liveRule{silence: d, alone: 2 * d, replies: 2 * d, confirm: liveConfirm}
}

// heardLately reports whether a peer's silence is short enough for it to
// count as heard, when another peer's silence is judged.
func (r liveRule) heardLately(pl *peerLive) bool {
	return !pl.down && pl.probing && pl.quiet < r.silence/2
}

// liveObs is what the tunnel knows of a peer.
type liveObs struct {
	heard time.Time     // the last authenticated packet from the peer; zero: none
	reply time.Time     // the last echo of one of our probes; zero: none ever
	rtt   time.Duration // smoothed round trip
}

func observe(p *tunnel.PeerPort) liveObs {
	rtt, reply := p.RTT()
	return liveObs{heard: p.Heard(), reply: reply, rtt: rtt}
}

// peerLive is the rule's memory of one peer.
type peerLive struct {
	probing bool // it has answered a probe
	down    bool
	downAt  time.Time
	suspect time.Time // when its silence was first seen over the limit; zero: not
	// quiet and replyQuiet are the silences (stall time taken out) as
	// measured last; ended is a silence over nearMiss of the limit that
	// ended without taking the peer down (zero: none at the last
	// measure); alone tells whether no other peer was heard at the last
	// verdict.
	quiet, replyQuiet, ended time.Duration
	alone                    bool
	lastAlone                time.Time // the latest verdict at which no other peer was heard
}

// nearMiss is the part of the limit over which a silence that ends is
// worth a log line: a live peer came close to going down.
func (r liveRule) nearMiss() time.Duration { return r.silence * 2 / 3 }

// measure takes the peer's silences at now. It comes before judge, for
// every peer, since each verdict looks at the others' silences.
func (r liveRule) measure(pl *peerLive, o liveObs, now time.Time, st *loopClock) {
	pl.probing = !o.reply.IsZero()
	if !pl.probing {
		*pl = peerLive{} // never answered a probe (an older l2wg): see judge
		return
	}
	if pl.down && o.reply.After(pl.downAt) {
		*pl = peerLive{probing: true} // a round trip since it went down: live again
	}
	heard := o.heard
	if heard.Before(o.reply) {
		heard = o.reply
	}
	prev := pl.quiet
	pl.quiet = now.Sub(heard) - st.stalledSince(heard, now)
	pl.ended = 0
	if !pl.down && pl.quiet < prev && prev >= r.nearMiss() {
		pl.ended = prev
	}
	pl.replyQuiet = now.Sub(o.reply) - st.stalledSince(o.reply, now)
}

// judge gives the verdict on a measured peer at now (onTime: the loop woke
// on time; alone: no other peer is heard lately): whether it counts as
// answering, and when it should be judged again (zero: no sooner than the
// loop's own tick).
func (r liveRule) judge(pl *peerLive, o liveObs, now time.Time, st *loopClock, onTime, alone bool) (answering bool, next time.Time) {
	if !pl.probing {
		// An older l2wg: its session decides, once something from it
		// has arrived (a session that carries traffic one way only
		// never brings a port up).
		return !o.heard.IsZero(), time.Time{}
	}
	if pl.down {
		return false, time.Time{}
	}
	pl.alone = alone
	left := r.alone - pl.quiet
	if alone {
		pl.lastAlone = now
	} else {
		// Silence shared with every other peer is not this peer's: its
		// own counts from when the others were heard again.
		quiet := pl.quiet
		if !pl.lastAlone.IsZero() {
			quiet = min(quiet, now.Sub(pl.lastAlone)-st.stalledSince(pl.lastAlone, now))
		}
		left = r.silence - quiet
	}
	left = min(left, r.replies+o.rtt-pl.replyQuiet)
	if left > 0 {
		pl.suspect = time.Time{}
		return true, now.Add(left)
	}
	if pl.suspect.IsZero() || !onTime {
		pl.suspect = now
		return true, now.Add(r.confirm)
	}
	if wait := r.confirm - now.Sub(pl.suspect); wait > 0 {
		return true, now.Add(wait)
	}
	pl.down, pl.downAt, pl.suspect = true, now, time.Time{}
	return false, time.Time{}
}

// loopClock measures how late a loop runs: a wake after the instant it was
// armed for, or work between a wake and the next arm, by more than
// stallSlack is a stall (the loop was not scheduled, nor most likely were
// the goroutines that receive packets); the last stallSpans stalls are
// remembered.
type loopClock struct {
	last  time.Time // the latest wake
	due   time.Time // when the next wake is due
	spans [stallSpans]struct{ from, to time.Time }
	n     int // spans recorded, ever
}

const stallSpans = 32

// wake records a wake at now; it reports whether the loop was on time.
func (c *loopClock) wake(now time.Time) (onTime bool) {
	c.last = now
	if c.due.IsZero() || now.Sub(c.due) <= stallSlack {
		return true
	}
	c.stalled(c.due, now)
	return false
}

// arm notes, at now, that the loop sleeps until due.
func (c *loopClock) arm(due, now time.Time) {
	if !c.last.IsZero() && now.Sub(c.last) > stallSlack {
		c.stalled(c.last, now)
	}
	c.last, c.due = now, due
}

// sooner moves the next wake, armed already, to an earlier due.
func (c *loopClock) sooner(due time.Time) { c.due = due }

func (c *loopClock) stalled(from, to time.Time) {
	c.spans[c.n%stallSpans] = struct{ from, to time.Time }{from, to}
	c.n++
}

// stalledSince is how much of [since, now] the loop spent in stalls.
func (c *loopClock) stalledSince(since, now time.Time) time.Duration {
	var d time.Duration
	for i := max(0, c.n-stallSpans); i < c.n; i++ {
		s := c.spans[i%stallSpans]
		from, to := s.from, s.to
		if from.Before(since) {
			from = since
		}
		if to.After(now) {
			to = now
		}
		if to.After(from) {
			d += to.Sub(from)
		}
	}
	return d
}

// judgePeers applies the rule to every peer at now, logs the changes of
// its verdicts, and returns the verdicts (by the peers' order) and when to
// judge again (zero: at the next tick).
func (lv *liveness) judgePeers(peers []*tunnel.PeerPort, now time.Time, onTime bool) (answering []bool, next time.Time) {
	lv.forget(peers)
	obs := make([]liveObs, len(peers))
	pls := make([]*peerLive, len(peers))
	for i, p := range peers {
		pl := lv.peers[p.PortID()]
		if pl == nil {
			pl = &peerLive{}
			lv.peers[p.PortID()] = pl
		}
		obs[i], pls[i] = observe(p), pl
		lv.rule.measure(pl, obs[i], now, &lv.clock)
		if pl.ended > 0 {
			lv.log.Info("liveness: peer heard again after a long silence", "peer", p.Name(),
				"quiet", pl.ended.Round(time.Millisecond), "limit", lv.rule.silence, "others_heard", !pl.alone)
		}
	}
	answering = make([]bool, len(peers))
	for i, p := range peers {
		alone := true
		for j, q := range pls {
			if j != i && lv.rule.heardLately(q) {
				alone = false
				break
			}
		}
		was := pls[i].down
		ok, at := lv.rule.judge(pls[i], obs[i], now, &lv.clock, onTime, alone)
		answering[i], next = ok, earliest(next, at)
		if !was && pls[i].down {
			lv.log.Info("liveness: nothing from the peer", "peer", p.Name(),
				"quiet", pls[i].quiet.Round(time.Millisecond), "echo_quiet", pls[i].replyQuiet.Round(time.Millisecond),
				"others_heard", !pls[i].alone)
		}
	}
	return answering, next
}

// forget drops the memory of peers no longer configured.
func (lv *liveness) forget(peers []*tunnel.PeerPort) {
	if len(lv.peers) == len(peers) {
		return
	}
	keep := make(map[bridge.PortID]bool, len(peers))
	for _, p := range peers {
		keep[p.PortID()] = true
	}
	for id := range lv.peers {
		if !keep[id] {
			delete(lv.peers, id)
		}
	}
}

// routineSpanningTree runs the tree's timers and follows each peer: a peer
// port is up while WireGuard has a session with the peer and the peer is
// live by the liveness rule (liveRule; one that never answered a probe,
// such as an older l2wg, by its session and anything received from it). It wakes every
// tick, and at the instant a peer's silence reaches the limit.
func (lv *liveness) routineSpanningTree(done <-chan struct{}) {
	interval := min(lv.interval, 100*time.Millisecond)
	wake := time.NewTimer(interval)
	defer wake.Stop()
	lv.clock.arm(time.Now().Add(interval), time.Now())
	sessions := make(map[bridge.PortID]bool)
	var lastPoll, lastCosts, lastTick time.Time
	for {
		select {
		case <-done:
			return
		case <-wake.C:
		}
		now := time.Now()
		onTime := lv.clock.wake(now)
		if now.Sub(lastTick) >= interval {
			lastTick = now
			lv.st.Tick(now)
		}
		if now.Sub(lastPoll) >= time.Second {
			lastPoll = now
			lv.pollSessions(sessions, now)
		}
		if now.Sub(lastCosts) >= autoCostEvery {
			lastCosts = now
			lv.updateAutoCosts()
		}
		next := lv.followPeers(sessions, now, onTime)
		sleep := lastTick.Add(interval).Sub(now)
		if !next.IsZero() {
			sleep = min(sleep, next.Sub(now))
		}
		sleep = max(sleep, time.Millisecond)
		armed := time.Now()
		lv.clock.arm(armed.Add(sleep), armed)
		wake.Reset(sleep)
	}
}

// pollSessions reads which peers have a WireGuard session, and nudges the
// others into a handshake.
func (lv *liveness) pollSessions(sessions map[bridge.PortID]bool, now time.Time) {
	ts, err := lv.tun.Status()
	if err != nil {
		return
	}
	clear(sessions)
	for _, p := range ts.Peers {
		sessions[p.Port] = p.Live(now)
	}
	lv.nudge(func(p *tunnel.PeerPort) bool { return sessions[p.PortID()] }, now)
}

// nudge asks WireGuard for a handshake with every peer that has no session
// (hasSession says which), and for a new one with every peer whose session
// has gone quiet (down by the liveness rule).
func (lv *liveness) nudge(hasSession func(*tunnel.PeerPort) bool, now time.Time) {
	for _, p := range lv.tun.Peers() {
		if !hasSession(p) {
			lv.tun.Nudge(p)
			continue
		}
		// A session whose peer went quiet: the peer may have restarted
		// with no memory of it. A new handshake finds out.
		if pl := lv.peers[p.PortID()]; pl != nil && pl.down {
			lv.log.Debug("peer quiet: new handshake", "peer", p.Name(), "since", now.Sub(pl.downAt).Round(time.Millisecond))
			lv.tun.Rehandshake(p)
			continue
		}
		// A session over which nothing has ever arrived, long after its
		// handshake: it carries traffic one way only (the peer's keys
		// are not ours). A new handshake mends it.
		if deaf(p, time.Duration(lv.loss)*lv.interval, now) {
			lv.log.Info("session one way only (nothing received since the handshake): new handshake", "peer", p.Name(), "handshake", now.Sub(p.Handshake()).Round(time.Millisecond))
			lv.tun.Rehandshake(p)
		}
	}
}

// deafAfter is how long after a handshake a session over which nothing
// has arrived counts as one-way: ten of the default probe intervals, far
// longer than the first probe's round trip.
const deafAfter = time.Second

// deaf reports whether p has a session over which nothing has arrived,
// although its handshake is over deafAfter plus the probe deadline old.
func deaf(p *tunnel.PeerPort, deadline time.Duration, now time.Time) bool {
	hs := p.Handshake()
	return p.Heard().IsZero() && !hs.IsZero() && now.Sub(hs) >= deadline+deafAfter
}

// followPeers sets each peer port up or down, and returns when a peer
// should be judged again (zero: no sooner than the next tick).
func (lv *liveness) followPeers(sessions map[bridge.PortID]bool, now time.Time, onTime bool) (next time.Time) {
	peers := lv.tun.Peers()
	verdicts, next := lv.judgePeers(peers, now, onTime)
	for i, p := range peers {
		answering := verdicts[i]
		up := sessions[p.PortID()] && answering
		if !lv.st.SetLink(p.PortID(), up) {
			continue
		}
		switch {
		case up:
			rtt, _ := p.RTT()
			lv.log.Info("peer port up", "peer", p.Name(), "rtt", rtt.Round(time.Microsecond))
		case !answering:
			lv.log.Warn("peer port down: nothing received from the peer", "peer", p.Name(), "quiet", lv.peers[p.PortID()].quiet.Round(time.Millisecond))
		default:
			lv.log.Info("peer port down: no wireguard session", "peer", p.Name())
		}
	}
	return next
}

// earliest is the earlier of two instants, a zero one being none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// updateAutoCosts moves auto costs towards the measured round trips.
func (lv *liveness) updateAutoCosts() {
	peers := lv.tun.Peers()
	ports := make([]rttPort, len(peers))
	for i, p := range peers {
		ports[i] = p
	}
	lv.costs.update(ports, lv.st.SetPortCost, lv.log)
}
