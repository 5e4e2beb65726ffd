package node

import (
	"time"

	"github.com/l2wg/l2wg/bridge"
)

// routineSpanningTree runs the tree's timers and follows each peer: a peer
// port is up while WireGuard has a session with the peer and the peer
// answers its liveness probes (one that never answered one, such as an
// older l2wg, is judged by its session alone). Probe loss takes a port down
// within probe_loss x probe_interval, far sooner than WireGuard notices.
func (n *Node) routineSpanningTree() {
	defer n.wg.Done()
	interval := min(n.cfg.ProbeInterval, 100*time.Millisecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sessions := make(map[bridge.PortID]bool)
	var lastPoll, lastCosts time.Time
	for {
		select {
		case <-n.done:
			return
		case now := <-tick.C:
			n.st.Tick(now)
			if now.Sub(lastPoll) >= time.Second {
				lastPoll = now
				n.pollSessions(sessions, now)
			}
			if now.Sub(lastCosts) >= autoCostEvery {
				lastCosts = now
				n.updateAutoCosts()
			}
			n.followPeers(sessions, now)
		}
	}
}

// pollSessions reads which peers have a WireGuard session, and nudges the
// others into a handshake.
func (n *Node) pollSessions(sessions map[bridge.PortID]bool, now time.Time) {
	ts, err := n.tun.Status()
	if err != nil {
		return
	}
	clear(sessions)
	for _, p := range ts.Peers {
		sessions[p.Port] = p.Live(now)
	}
	for _, p := range n.tun.Peers() {
		if !sessions[p.PortID()] {
			n.tun.Nudge(p)
		}
	}
}

// followPeers sets each peer port up or down.
func (n *Node) followPeers(sessions map[bridge.PortID]bool, now time.Time) {
	deadline := time.Duration(n.cfg.ProbeLoss) * n.cfg.ProbeInterval
	for _, p := range n.tun.Peers() {
		rtt, last := p.RTT()
		answering := last.IsZero() || now.Sub(last) < deadline+rtt
		up := sessions[p.PortID()] && answering
		if !n.st.SetLink(p.PortID(), up) {
			continue
		}
		switch {
		case up:
			n.log.Info("peer port up", "peer", p.Name(), "rtt", rtt.Round(time.Microsecond))
		case !answering:
			n.log.Warn("peer port down: liveness probes unanswered", "peer", p.Name(), "since", now.Sub(last).Round(time.Millisecond))
		default:
			n.log.Info("peer port down: no wireguard session", "peer", p.Name())
		}
	}
}

// updateAutoCosts moves auto costs towards the measured round trips.
func (n *Node) updateAutoCosts() {
	peers := n.tun.Peers()
	ports := make([]rttPort, len(peers))
	for i, p := range peers {
		ports[i] = p
	}
	n.costs.update(ports, n.st.SetPortCost, n.log)
}
