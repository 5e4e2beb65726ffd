package node

import (
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/stp"
)

// Path costs from latency: a peer port whose cost is "auto" (the default)
// costs stp.DefaultPathCost plus one per 100 µs of round trip, so
// the tree prefers short paths — a 20 ms detour costs 200 more — while ports
// of equal latency keep equal costs and the usual tie-breaks. The cost moves
// only when the new value differs by more than a fifth and by more than 10
// (a millisecond), so that jitter does not flap the tree.

// autoCostEvery is how often auto costs are reconsidered.
const autoCostEvery = 5 * time.Second

// costFromRTT is the path cost of a port with round trip rtt.
func costFromRTT(rtt time.Duration) uint32 {
	c := uint64(stp.DefaultPathCost) + uint64(rtt/(100*time.Microsecond))
	return uint32(min(c, uint64(stp.MaxPathCost)))
}

// costShouldMove reports whether an auto cost should move from cur to want.
func costShouldMove(cur, want uint32) bool {
	d := int64(want) - int64(cur)
	if d < 0 {
		d = -d
	}
	return d > 10 && d*5 > int64(cur)
}

// setAutoCost marks a peer port's cost automatic, or fixed (auto false).
func (n *Node) setAutoCost(id bridge.PortID, auto bool) {
	n.costMu.Lock()
	defer n.costMu.Unlock()
	if auto {
		n.autoCost[id] = stp.DefaultPathCost
	} else {
		delete(n.autoCost, id)
	}
}

// updateAutoCosts moves auto costs towards the measured round trips.
func (n *Node) updateAutoCosts() {
	n.costMu.Lock()
	defer n.costMu.Unlock()
	for _, p := range n.tun.Peers() {
		cur, ok := n.autoCost[p.PortID()]
		rtt := p.MinRTT()
		if !ok || rtt == 0 {
			continue
		}
		want := costFromRTT(rtt)
		if !costShouldMove(cur, want) {
			continue
		}
		if err := n.st.SetPortCost(p.PortID(), want); err != nil {
			n.log.Warn("set auto path cost", "peer", p.Name(), "err", err)
			continue
		}
		n.autoCost[p.PortID()] = want
		n.log.Info("path cost follows the round trip", "peer", p.Name(), "min_rtt", rtt.Round(10*time.Microsecond), "cost", want, "was", cur)
	}
}
