package stp

import (
	"testing"
	"time"
)

// waitQuiet runs until no bridge has a topology change in progress.
func (l *lab) waitQuiet() {
	l.t.Helper()
	_, ok := l.runUntil(2*time.Minute, func() bool {
		for _, nd := range l.nodes {
			if st := nd.br.Status(); !nd.dead && (st.TopologyChange || st.TopologyChangeDetected) {
				return false
			}
		}
		return true
	})
	if !ok {
		l.t.Fatal("topology change never ends")
	}
}

// TestTopologyChange follows one change through a line of three bridges:
// a new port on the far bridge starts forwarding, its TCN climbs to the root
// hop by hop and is acknowledged, the root sets TC for max age + forward
// delay, every bridge ages its FDB at the forward delay meanwhile, then
// restores its ageing.
func TestTopologyChange(t *testing.T) {
	l := newLab(t, prio, prio, prio)
	ab := l.connect(0, 1, 100)
	bc := l.connect(1, 2, 100)
	l.converge(boundStart, 10*time.Second)
	l.waitQuiet()
	counts := make([]uint64, 3)
	for n, nd := range l.nodes {
		counts[n] = nd.br.Status().TopologyChanges
		if nd.ageing != 0 {
			t.Fatalf("node %d ageing %v after the change ended", n, nd.ageing)
		}
	}

	t0 := l.elapsed()
	edge := l.addPort(2, DefaultPortConfig()) // a port with nobody behind it
	took, ok := l.runUntil(time.Minute, func() bool { return l.nodes[2].states[edge] == Forwarding })
	if !ok || took != 2*DefaultForwardDelay {
		t.Fatalf("edge port forwarding after %v (%v), want %v", took, ok, 2*DefaultForwardDelay)
	}
	tc := l.elapsed()

	if st := l.nodes[0].br.Status(); !st.TopologyChange || st.LastTopologyChange != labEpoch.Add(tc) {
		t.Errorf("root: topology change %v since %v, want since %v", st.TopologyChange, st.LastTopologyChange, labEpoch.Add(tc))
	}

	// TC reaches everyone within a hello; ageing shortens to the forward delay.
	// The acknowledgments came within the hold time (a config BPDU may just
	// have been sent), before a TCN had to be repeated.
	l.run(DefaultHelloTime + l.step)
	// The TCN went up hop by hop at once, and was not repeated.
	cRoot, bRoot := l.portOn(2, bc), l.portOn(1, ab)
	for _, hop := range []struct {
		node int
		port PortNo
	}{{2, cRoot}, {1, bRoot}} {
		var tcns []stamped
		for _, a := range l.since(hop.node, t0, SendBPDU) {
			if a.BPDU.Type == TypeTCN {
				tcns = append(tcns, a)
			}
		}
		if len(tcns) != 1 || tcns[0].Port != hop.port || tcns[0].at != tc {
			t.Errorf("node %d sent TCNs %v, want one on its root port %d at %v", hop.node, tcns, hop.port, tc)
		}
	}
	for _, n := range []int{1, 2} {
		if st := l.nodes[n].br.Status(); st.TopologyChangeDetected {
			t.Errorf("node %d: TCN not acknowledged", n)
		}
	}
	for n, nd := range l.nodes {
		st := nd.br.Status()
		if !st.TopologyChange || nd.ageing != DefaultForwardDelay || st.TopologyChanges != counts[n]+1 {
			t.Errorf("node %d: TC %v ageing %v changes %d", n, st.TopologyChange, nd.ageing, st.TopologyChanges)
		}
		if got := l.since(n, tc, SetAgeing); len(got) != 1 || got[0].Ageing != DefaultForwardDelay {
			t.Errorf("node %d: SetAgeing actions %v", n, got)
		}
	}

	// The root's TC lasts max age + forward delay; the others follow at its
	// next hello.
	l.run(DefaultMaxAge + DefaultForwardDelay - DefaultHelloTime - 2*l.step)
	if !l.nodes[0].br.Status().TopologyChange {
		t.Error("root ended the topology change early")
	}
	l.run(DefaultHelloTime + 2*l.step)
	for n, nd := range l.nodes {
		if nd.br.Status().TopologyChange || nd.ageing != 0 || len(l.since(n, tc, RestoreAgeing)) != 1 {
			t.Errorf("node %d: topology change not over after max age + forward delay", n)
		}
	}
}

// TestBlockingFlushes: a port that leaves Forwarding for Blocking flushes
// its addresses and reports a topology change.
func TestBlockingFlushes(t *testing.T) {
	l := ring4.build(t)
	l.converge(boundStart, 10*time.Second)
	l.waitQuiet()
	c := 2
	toB, toD := l.portOn(c, 1), l.portOn(c, 2)
	if l.nodes[c].states[toB] != Forwarding || l.nodes[c].states[toD] != Blocking {
		t.Fatalf("unexpected tree\n%s", l.dump())
	}
	t0 := l.elapsed()
	// A cheap port towards D makes it C's root port; B then offers the
	// better path to the B-C link, and C's port to B must block.
	acts, err := l.nodes[c].br.SetPortCost(toD, 1, l.now)
	if err != nil {
		t.Fatal(err)
	}
	l.apply(c, acts)
	l.drain()
	log := l.nodes[c].log
	var order []string
	for _, a := range log {
		if a.at >= t0 && a.Port == toB && (a.Kind == SetState || a.Kind == FlushFDB) {
			order = append(order, a.String())
		}
	}
	want := []string{"set-state port 1 blocking", "flush-fdb port 1"}
	if len(order) != 2 || order[0] != want[0] || order[1] != want[1] {
		t.Errorf("port to B: %v, want %v", order, want)
	}
	if st := l.nodes[c].br.Status(); st.RootPort != toD || st.RootPathCost != 101 {
		t.Errorf("root port %d cost %d, want %d 101", st.RootPort, st.RootPathCost, toD)
	}
	if !l.nodes[0].br.Status().TopologyChange {
		t.Error("root did not hear of the change")
	}
	l.converge(boundStart, 10*time.Second)
	if got := l.blockedPorts(); len(got) != 1 || got[0] != "2:1" {
		t.Errorf("blocked %v, want [2:1]", got)
	}
}
