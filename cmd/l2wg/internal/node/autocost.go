package node

import (
	"log/slog"
	"sync"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/stp"
)

// Path costs from latency: a peer port whose cost is "auto" (the default)
// costs stp.DefaultPathCost plus one per 100 µs of round trip, so
// the tree prefers short paths — a 20 ms detour costs 200 more — while ports
// of equal latency keep equal costs and the usual tie-breaks. The cost moves
// only when the new value differs by more than 10 (a millisecond) and, up,
// by more than a fifth, or down, by more than a twentieth, so that jitter
// does not flap the tree. Down moves are the ones that find the path's
// real delay: the least round trip only falls as samples come in, and the
// first ones, taken while a node starts, ran 10-20 % long under load; held
// by a fifth, such a cost stuck, and the mesh chose a path 13 % longer
// than the best (twelve-sites, nyc-sin). A least round trip rises again
// only when its best samples leave the window.

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
		return -d > 10 && -d*20 > int64(cur)
	}
	return d > 10 && d*5 > int64(cur)
}

// autoCosts are the peer ports whose cost is "auto", with the cost applied
// to each. A port's mark and its cost change together, under mu, so that
// the auto loop never overwrites a cost just fixed by a reload.
type autoCosts struct {
	mu   sync.Mutex
	cost map[bridge.PortID]uint32 // protected by mu
}

// setCost is the tree's SetPortCost.
type setCost func(id bridge.PortID, cost uint32) error

// mark records a new port's cost as auto (it starts at the default) or
// fixed.
func (a *autoCosts) mark(id bridge.PortID, auto bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cost == nil {
		a.cost = make(map[bridge.PortID]uint32)
	}
	if auto {
		a.cost[id] = stp.DefaultPathCost
	} else {
		delete(a.cost, id)
	}
}

// forget drops a removed port.
func (a *autoCosts) forget(id bridge.PortID) { a.mark(id, false) }

// set gives port id the configured cost: a fixed one, or config.CostAuto
// (from the default, then following the round trip).
func (a *autoCosts) set(id bridge.PortID, cost uint32, apply setCost) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cost == nil {
		a.cost = make(map[bridge.PortID]uint32)
	}
	if cost == config.CostAuto {
		if err := apply(id, stp.DefaultPathCost); err != nil {
			return err
		}
		a.cost[id] = stp.DefaultPathCost
		return nil
	}
	if err := apply(id, cost); err != nil {
		return err
	}
	delete(a.cost, id)
	return nil
}

// rttPort is a peer port as the auto costs see it (a *tunnel.PeerPort).
type rttPort interface {
	PortID() bridge.PortID
	Name() string
	MinRTT() time.Duration
}

// update moves auto costs towards the measured round trips.
func (a *autoCosts) update(ports []rttPort, apply setCost, log *slog.Logger) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range ports {
		cur, ok := a.cost[p.PortID()]
		rtt := p.MinRTT()
		if !ok || rtt == 0 {
			continue
		}
		want := costFromRTT(rtt)
		if !costShouldMove(cur, want) {
			continue
		}
		if err := apply(p.PortID(), want); err != nil {
			log.Warn("set auto path cost", "peer", p.Name(), "err", err)
			continue
		}
		a.cost[p.PortID()] = want
		log.Info("path cost follows the round trip", "peer", p.Name(), "min_rtt", rtt.Round(10*time.Microsecond), "cost", want, "was", cur)
	}
}
