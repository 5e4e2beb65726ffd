package node

import (
	"log/slog"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/tunnel"
)

// liveness follows the peers for the spanning tree: their WireGuard
// sessions, their answers to the probes, and their round trips for the
// auto path costs.
type liveness struct {
	tun      *tunnel.Tunnel
	st       *spanning.Tree
	costs    *autoCosts
	log      *slog.Logger
	interval time.Duration // tunnel.probe_interval
	loss     int           // tunnel.probe_loss
}

// routineSpanningTree runs the tree's timers and follows each peer: a peer
// port is up while WireGuard has a session with the peer and the peer
// answers its liveness probes (one that never answered one, such as an
// older l2wg, by its session and anything received from it). Probe loss
// takes a port down within probe_loss x probe_interval, far sooner than
// WireGuard notices.
func (lv *liveness) routineSpanningTree(done <-chan struct{}) {
	interval := min(lv.interval, 100*time.Millisecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sessions := make(map[bridge.PortID]bool)
	var lastPoll, lastCosts time.Time
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			lv.st.Tick(now)
			if now.Sub(lastPoll) >= time.Second {
				lastPoll = now
				lv.pollSessions(sessions, now)
			}
			if now.Sub(lastCosts) >= autoCostEvery {
				lastCosts = now
				lv.updateAutoCosts()
			}
			lv.followPeers(sessions, now)
		}
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
// has gone quiet.
func (lv *liveness) nudge(hasSession func(*tunnel.PeerPort) bool, now time.Time) {
	deadline := time.Duration(lv.loss) * lv.interval
	for _, p := range lv.tun.Peers() {
		if !hasSession(p) {
			lv.tun.Nudge(p)
			continue
		}
		// A session whose probes go unanswered: the peer may have
		// restarted with no memory of it. A new handshake finds out.
		if rtt, last := p.RTT(); deadline > 0 && !last.IsZero() && now.Sub(last) >= deadline+rtt {
			lv.log.Debug("probes unanswered: new handshake", "peer", p.Name(), "since", now.Sub(last).Round(time.Millisecond))
			lv.tun.Rehandshake(p)
			continue
		}
		// A session over which nothing has ever arrived, long after its
		// handshake: it carries traffic one way only (the peer's keys
		// are not ours). A new handshake mends it.
		if deaf(p, deadline, now) {
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

// answering reports whether peer p counts as answering its liveness probes:
// its last reply is younger than deadline plus a round trip; or, for a peer
// that has answered none (an older l2wg), something from it has arrived
// (a probe, a frame), so that a session carrying traffic one way only never
// brings a port up.
func answering(p *tunnel.PeerPort, deadline time.Duration, now time.Time) bool {
	rtt, last := p.RTT()
	if last.IsZero() {
		return !p.Heard().IsZero()
	}
	return now.Sub(last) < deadline+rtt
}

// followPeers sets each peer port up or down.
func (lv *liveness) followPeers(sessions map[bridge.PortID]bool, now time.Time) {
	deadline := time.Duration(lv.loss) * lv.interval
	for _, p := range lv.tun.Peers() {
		rtt, last := p.RTT()
		answers := answering(p, deadline, now)
		up := sessions[p.PortID()] && answers
		if !lv.st.SetLink(p.PortID(), up) {
			continue
		}
		switch {
		case up:
			lv.log.Info("peer port up", "peer", p.Name(), "rtt", rtt.Round(time.Microsecond))
		case !answers && last.IsZero():
			lv.log.Info("peer port down: nothing received from the peer", "peer", p.Name())
		case !answers:
			lv.log.Warn("peer port down: liveness probes unanswered", "peer", p.Name(), "since", now.Sub(last).Round(time.Millisecond))
		default:
			lv.log.Info("peer port down: no wireguard session", "peer", p.Name())
		}
	}
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
