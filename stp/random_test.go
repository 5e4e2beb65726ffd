package stp

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRandomNetworks builds random connected graphs, shakes them with link
// failures, silent links, repairs, cost and priority changes at random
// times, then lets them settle: every run must end in a spanning tree, and
// within the 802.1D bound (max age + 2 forward delays, plus a hello for the
// information in flight) after the last event.
func TestRandomNetworks(t *testing.T) {
	for seed := range randomSeeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			n := 3 + rng.IntN(5)
			prios := make([]uint16, n)
			for i := range prios {
				prios[i] = uint16(rng.IntN(4)) << 12
			}
			l := newLab(t, prios...)
			for i := 1; i < n; i++ { // a random spanning tree keeps it connected
				l.connect(i, rng.IntN(i), uint32(1+rng.IntN(4))*50)
			}
			for range rng.IntN(2 * n) { // and redundant links, some parallel
				a, b := rng.IntN(n), rng.IntN(n)
				if a != b {
					l.connect(a, b, uint32(1+rng.IntN(4))*50)
				}
			}
			l.converge(boundStart+DefaultMaxAge, 5*time.Second)

			for range 1 + rng.IntN(6) {
				l.run(time.Duration(rng.IntN(20_000)) * time.Millisecond)
				l.randomEvent(rng)
			}
			// Heal the links that went down or silent: the graph is the
			// connected one again. Then watch for three minutes: the tree
			// must be whole and still from some time on, and that time must
			// come within the 802.1D bound after the last event. (A
			// spanning tree may show for a while before it, held by
			// information that has yet to age out: after a bridge's
			// priority got worse, its neighbours keep its old, better ID
			// until max age.)
			for i, lk := range l.links {
				lk.silent = false
				if lk.down {
					l.linkUp(i)
				}
			}
			last := l.now
			settled := l.settleTime(3 * time.Minute)
			if settled.IsZero() {
				t.Fatalf("no stable spanning tree: %s\n%s", l.treeReport(), l.dump())
			}
			if took := settled.Sub(last); took > boundFailure+DefaultHelloTime {
				t.Errorf("settled %v after the last event, bound %v", took, boundFailure+DefaultHelloTime)
			}
		})
	}
}

func (l *lab) randomEvent(rng *rand.Rand) {
	i := rng.IntN(len(l.links))
	lk := l.links[i]
	switch rng.IntN(5) {
	case 0:
		if !lk.down {
			l.linkDown(i)
		}
	case 1:
		if lk.down {
			l.linkUp(i)
		}
	case 2:
		lk.silent = !lk.silent
	case 3:
		e := lk.a
		acts, err := l.nodes[e.node].br.SetPortCost(e.port, uint32(1+rng.IntN(4))*50, l.now)
		if err != nil {
			l.t.Fatal(err)
		}
		l.apply(e.node, acts)
	case 4:
		n := rng.IntN(len(l.nodes))
		l.apply(n, l.nodes[n].br.SetBridgePriority(uint16(rng.IntN(4))<<12, l.now))
	}
	l.drain()
}

// randomSeeds is how many random networks a test builds: 40, or 8 under
// -short (make test's emulated architectures).
func randomSeeds() uint64 {
	if testing.Short() {
		return 8
	}
	return 40
}
