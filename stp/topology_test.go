package stp

import (
	"slices"
	"testing"
	"time"
)

// 802.1D timer bounds with the default timers.
const (
	// A port that becomes root or designated forwards two forward delays
	// later; the election itself takes a hello or two.
	boundStart = 2*DefaultForwardDelay + 2*DefaultHelloTime
	// A failure heals once the lost information ages out (max age) and the
	// new path has passed Listening and Learning.
	boundFailure = DefaultMaxAge + 2*DefaultForwardDelay
)

type topoLink struct {
	a, b         int
	cost         uint32
	prioA, prioB uint8 // port priorities; 0 means the default
}

type nodeLink struct{ node, link int }

type topology struct {
	prios []uint16
	links []topoLink
}

func (tp topology) build(t testing.TB) *lab {
	l := newLab(t, tp.prios...)
	for _, lk := range tp.links {
		pa, pb := lk.prioA, lk.prioB
		if pa == 0 {
			pa = DefaultPortPriority
		}
		if pb == 0 {
			pb = DefaultPortPriority
		}
		l.connectPorts(lk.a, lk.b, PortConfig{Priority: pa, PathCost: lk.cost}, PortConfig{Priority: pb, PathCost: lk.cost})
	}
	return l
}

var (
	prio  = DefaultBridgePriority
	ring4 = topology{
		prios: []uint16{prio, prio, prio, prio},
		links: []topoLink{{a: 0, b: 1}, {a: 1, b: 2}, {a: 2, b: 3}, {a: 3, b: 0}},
	}
	mesh5 = topology{
		prios: []uint16{prio, prio, prio, prio, prio},
		links: []topoLink{{a: 0, b: 1}, {a: 0, b: 2}, {a: 1, b: 2}, {a: 1, b: 3}, {a: 2, b: 4}, {a: 3, b: 4}, {a: 2, b: 3}},
	}
	triangle = topology{
		prios: []uint16{prio, prio, prio},
		links: []topoLink{{a: 0, b: 1}, {a: 0, b: 2}, {a: 1, b: 2}},
	}
)

// spanningTreeCases are topologies with the ports that must end up blocked.
var spanningTreeCases = []struct {
	name     string
	topo     topology
	wantRoot int
	blocked  []nodeLink // the ports that must end up blocked; all others forward
}{
	{
		name:     "two bridges",
		topo:     topology{prios: []uint16{prio, prio}, links: []topoLink{{a: 1, b: 0}}},
		wantRoot: 0,
	},
	{
		name:     "two bridges, lower priority wins over lower address",
		topo:     topology{prios: []uint16{prio, 0x1000}, links: []topoLink{{a: 0, b: 1}}},
		wantRoot: 1,
	},
	{
		name:     "parallel links: designated port ID breaks the tie",
		topo:     topology{prios: []uint16{prio, prio}, links: []topoLink{{a: 0, b: 1}, {a: 0, b: 1}}},
		wantRoot: 0,
		blocked:  []nodeLink{{node: 1, link: 1}},
	},
	{
		name: "parallel links: root's port priority breaks the tie",
		topo: topology{prios: []uint16{prio, prio},
			links: []topoLink{{a: 0, b: 1}, {a: 0, b: 1, prioA: 0x40}}},
		wantRoot: 0,
		blocked:  []nodeLink{{node: 1, link: 0}},
	},
	{
		name: "parallel links: cost wins over port ID",
		topo: topology{prios: []uint16{prio, prio},
			links: []topoLink{{a: 0, b: 1, cost: 200}, {a: 0, b: 1, cost: 100}}},
		wantRoot: 0,
		blocked:  []nodeLink{{node: 1, link: 0}},
	},
	{
		name:     "triangle: bridge ID breaks the tie on the far link",
		topo:     triangle,
		wantRoot: 0,
		blocked:  []nodeLink{{node: 2, link: 2}},
	},
	{
		name: "triangle: cost moves the block",
		topo: topology{prios: triangle.prios,
			links: []topoLink{{a: 0, b: 1}, {a: 0, b: 2, cost: 1000}, {a: 1, b: 2}}},
		wantRoot: 0,
		blocked:  []nodeLink{{node: 2, link: 1}},
	},
	{
		name:     "triangle: priority elects another root",
		topo:     topology{prios: []uint16{prio, prio, 0x1000}, links: triangle.links},
		wantRoot: 2,
		blocked:  []nodeLink{{node: 1, link: 0}},
	},
	{
		name:     "ring of 4",
		topo:     ring4,
		wantRoot: 0,
		blocked:  []nodeLink{{node: 2, link: 2}},
	},
	{
		name:     "partial mesh of 5",
		topo:     mesh5,
		wantRoot: 0,
		blocked:  []nodeLink{{node: 2, link: 2}, {node: 4, link: 5}, {node: 3, link: 6}},
	},
}

func TestSpanningTree(t *testing.T) {
	for _, tt := range spanningTreeCases {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.topo.build(t)
			took := l.converge(boundStart+DefaultMaxAge, time.Minute)
			t.Logf("converged in %v", took)
			if took > boundStart {
				t.Errorf("converged in %v, bound %v", took, boundStart)
			}
			wantRoot := l.nodes[tt.wantRoot].br.Status().BridgeID
			if got := l.nodes[0].br.Status().RootID; got != wantRoot {
				t.Errorf("root %v, want node %d %v", got, tt.wantRoot, wantRoot)
			}
			l.checkBlocked(t, tt.blocked)
			for n, nd := range l.nodes {
				for _, p := range nd.br.Status().Ports {
					wantRole := RoleDesignated
					switch {
					case p.State == Blocking:
						wantRole = RoleBlocked
					case n != tt.wantRoot && p.No == nd.br.Status().RootPort:
						wantRole = RoleRoot
					}
					if p.Role != wantRole {
						t.Errorf("node %d port %d: %v %v", n, p.No, p.State, p.Role)
					}
				}
			}
		})
	}
}

func TestFailover(t *testing.T) {
	tests := []struct {
		name  string
		topo  topology
		fail  func(l *lab)
		bound time.Duration
	}{
		{
			name:  "ring of 4, link to the root goes down",
			topo:  ring4,
			fail:  func(l *lab) { l.linkDown(0) },
			bound: boundFailure,
		},
		{
			name:  "ring of 4, link to the root falls silent",
			topo:  ring4,
			fail:  func(l *lab) { l.links[0].silent = true },
			bound: boundFailure,
		},
		{
			name:  "triangle, root port link goes down",
			topo:  triangle,
			fail:  func(l *lab) { l.linkDown(0) },
			bound: boundFailure,
		},
		{
			name:  "partial mesh of 5, the root dies",
			topo:  mesh5,
			fail:  func(l *lab) { l.kill(0) },
			bound: boundFailure,
		},
		{
			name:  "partial mesh of 5, a transit bridge dies",
			topo:  mesh5,
			fail:  func(l *lab) { l.kill(2) },
			bound: boundFailure,
		},
		{
			name:  "partial mesh of 5, a forwarding link falls silent",
			topo:  mesh5,
			fail:  func(l *lab) { l.links[4].silent = true },
			bound: boundFailure,
		},
		{
			name:  "partial mesh of 5, two links go down",
			topo:  mesh5,
			fail:  func(l *lab) { l.linkDown(1); l.linkDown(3) },
			bound: boundFailure,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.topo.build(t)
			l.converge(boundStart, time.Minute)
			before := l.forwardingLinks()
			tt.fail(l)
			took := l.converge(2*tt.bound, 2*time.Minute)
			t.Logf("healed in %v (bound %v); forwarding links %v -> %v", took, tt.bound, before, l.forwardingLinks())
			if took > tt.bound {
				t.Errorf("healed in %v, bound %v\n%s", took, tt.bound, l.dump())
			}
		})
	}
}

// TestLinkRestored: a failed link that comes back rejoins the tree, and the
// tree is the one from before the failure.
func TestLinkRestored(t *testing.T) {
	l := ring4.build(t)
	l.converge(boundStart, time.Minute)
	before := l.forwardingLinks()
	l.linkDown(0)
	l.converge(boundFailure, time.Minute)
	l.linkUp(0)
	took := l.converge(boundStart, time.Minute)
	if got := l.forwardingLinks(); !slices.Equal(got, before) {
		t.Errorf("forwarding links %v, want %v as before the failure", got, before)
	}
	t.Logf("restored in %v", took)
}
