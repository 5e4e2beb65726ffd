package stp

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// RSTP bounds with the default timers. A handshake round is instantaneous
// in the lab (BPDUs are delivered within the step that sends them), so
// "within one step" is "within one handshake round".
const (
	// Cold start: every bridge first claims the root; the handshakes then
	// settle the tree hop by hop, each round bounded by the transmit hold
	// (TxHoldCount BPDUs a second) at worst.
	rstpBoundStart = 3 * time.Second
	// A silent neighbour's information ages out after 3 hellos (counted in
	// whole ticks of the port timers), then the handshake takes over.
	rstpBoundSilent = 3*DefaultHelloTime + time.Second
	// See TestRSTPFailover.
	rstpBoundRootDeath = DefaultMaxAge + DefaultForwardDelay
)

// buildRSTP builds the topology with RSTP bridges and point-to-point ports.
func (tp topology) buildRSTP(t testing.TB) *lab {
	protos := make([]Protocol, len(tp.prios))
	for i := range protos {
		protos[i] = ProtocolRSTP
	}
	return tp.buildWith(t, protos)
}

func (tp topology) buildWith(t testing.TB, protos []Protocol) *lab {
	l := newLabProtocols(t, protos, tp.prios...)
	for _, lk := range tp.links {
		pa, pb := lk.prioA, lk.prioB
		if pa == 0 {
			pa = DefaultPortPriority
		}
		if pb == 0 {
			pb = DefaultPortPriority
		}
		l.connectPorts(lk.a, lk.b,
			PortConfig{Priority: pa, PathCost: lk.cost, PointToPoint: true},
			PortConfig{Priority: pb, PathCost: lk.cost, PointToPoint: true})
	}
	return l
}

// TestRSTPSpanningTree: from a cold start RSTP builds the tree 802.1D
// builds, with alternate ports where 802.1D blocks, within seconds.
func TestRSTPSpanningTree(t *testing.T) {
	for _, tt := range spanningTreeCases {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.topo.buildRSTP(t)
			took := l.converge(rstpBoundStart+DefaultMaxAge, time.Minute)
			t.Logf("converged in %v", took)
			if took > rstpBoundStart {
				t.Errorf("converged in %v, bound %v\n%s", took, rstpBoundStart, l.dump())
			}
			wantRoot := l.nodes[tt.wantRoot].br.Status().BridgeID
			for n, nd := range l.nodes {
				if got := nd.br.Status().RootID; got != wantRoot {
					t.Errorf("node %d: root %v, want node %d %v", n, got, tt.wantRoot, wantRoot)
				}
			}
			l.checkBlocked(t, tt.blocked)
			for n, nd := range l.nodes {
				st := nd.br.Status()
				if st.Protocol != ProtocolRSTP {
					t.Errorf("node %d: protocol %v", n, st.Protocol)
				}
				for _, p := range st.Ports {
					wantRole := RoleDesignated
					switch {
					case p.State == Discarding:
						wantRole = RoleAlternate
					case n != tt.wantRoot && p.No == st.RootPort:
						wantRole = RoleRoot
					}
					if p.Role != wantRole || p.Protocol != ProtocolRSTP || !p.PointToPoint || p.Edge {
						t.Errorf("node %d port %d: %v %v %v p2p %v edge %v", n, p.No, p.State, p.Role, p.Protocol, p.PointToPoint, p.Edge)
					}
				}
			}
		})
	}
}

// connectLive adds a port on a and b, wires them, then enables both: the
// link comes up as a cable plugged in, with no BPDU lost.
func (l *lab) connectLive(a, b int, ca, cb PortConfig) int {
	l.t.Helper()
	add := func(n int, cfg PortConfig) end {
		nd := l.nodes[n]
		no := nd.nextNo
		nd.nextNo++
		acts, err := nd.br.AddPort(no, cfg, l.now)
		if err != nil {
			l.t.Fatal(err)
		}
		nd.states[no] = Disabled
		l.apply(n, acts)
		return end{n, no}
	}
	i := len(l.links)
	lk := &labLink{a: add(a, ca), b: add(b, cb)}
	l.links = append(l.links, lk)
	l.peer[lk.a], l.peer[lk.b] = i, i
	lk.down = true
	l.linkUp(i)
	return i
}

func p2p(cost uint32) PortConfig {
	return PortConfig{Priority: DefaultPortPriority, PathCost: cost, PointToPoint: true}
}

// TestRSTPFailover: an alternate port takes over within one handshake
// round when the root port's link goes down, and within three hellos and a
// handshake when the root port's neighbour falls silent.
func TestRSTPFailover(t *testing.T) {
	tests := []struct {
		name  string
		topo  topology
		fail  func(l *lab)
		bound time.Duration
	}{
		{"ring of 4, link to the root goes down", ring4, func(l *lab) { l.linkDown(0) }, l100ms},
		{"ring of 4, far link goes down", ring4, func(l *lab) { l.linkDown(1) }, l100ms},
		{"triangle, root port link goes down", triangle, func(l *lab) { l.linkDown(0) }, l100ms},
		{"partial mesh of 5, two links go down", mesh5, func(l *lab) { l.linkDown(1); l.linkDown(3) }, l100ms},
		{"ring of 4, link to the root falls silent", ring4, func(l *lab) { l.links[0].silent = true }, rstpBoundSilent},
		{"partial mesh of 5, a forwarding link falls silent", mesh5, func(l *lab) { l.links[4].silent = true }, rstpBoundSilent},
		{"partial mesh of 5, a transit bridge dies", mesh5, func(l *lab) { l.kill(2) }, rstpBoundSilent},
		// The death of the root bridge itself is RSTP's weak spot: its
		// neighbours' stale information about it circulates round the
		// loops ("count to infinity") until its message age reaches max
		// age, one second per hop, each hop at least a BPDU apart.
		{"partial mesh of 5, the root dies", mesh5, func(l *lab) { l.kill(0) }, rstpBoundRootDeath},
		{"partial mesh of 5, the root dies, its links seen down", mesh5,
			func(l *lab) { l.kill(0); l.linkDown(0); l.linkDown(1) }, rstpBoundRootDeath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.topo.buildRSTP(t)
			l.converge(rstpBoundStart, 10*time.Second)
			before := l.forwardingLinks()
			l.check = l.loopFree
			tt.fail(l)
			took, ok := l.runUntil(2*tt.bound+10*time.Second, func() bool { return l.treeReport() == "" })
			t.Logf("healed in %v (bound %v); forwarding links %v -> %v", took, tt.bound, before, l.forwardingLinks())
			if !ok || took > tt.bound {
				t.Errorf("healed in %v, bound %v: %s\n%s", took, tt.bound, l.treeReport(), l.dump())
			}
			// The ports on a dead link end up designated at both ends,
			// after their timers; the tree stays the same.
			after := l.forwardingLinks()
			l.run(time.Minute)
			l.converge(0, time.Minute)
			if got := l.forwardingLinks(); !slices.Equal(got, after) {
				t.Errorf("forwarding links %v a minute later, %v when healed", got, after)
			}
		})
	}
}

// l100ms: one lab step, a handshake round.
const l100ms = 100 * time.Millisecond

// loopFree fails the test whenever the links forwarding at both ends close
// a loop, at any step.
func (l *lab) loopFree() {
	l.t.Helper()
	parent := map[int]int{}
	var find func(int) int
	find = func(n int) int {
		if p, ok := parent[n]; ok && p != n {
			return find(p)
		}
		return n
	}
	for _, i := range l.forwardingLinks() {
		lk := l.links[i]
		if !lk.quietAt.IsZero() && l.now.Sub(lk.quietAt) <= DefaultHelloTime+l.step {
			continue // back from silence: the ends have yet to hear each other
		}
		ra, rb := find(lk.a.node), find(lk.b.node)
		if ra == rb {
			l.t.Fatalf("%v: link %d closes a forwarding loop\n%s", l.elapsed(), i, l.dump())
		}
		parent[ra] = rb
	}
}

// TestRSTPProposalAgreement: a new link between converged bridges forwards
// after one handshake round, not after two forward delays.
func TestRSTPProposalAgreement(t *testing.T) {
	tests := []struct {
		name     string
		prios    []uint16
		links    []topoLink
		newLink  topoLink
		wantFwd  bool // the new link ends up forwarding (else an alternate port)
		wantRoot int
	}{
		{"two lone bridges", []uint16{prio, prio}, nil, topoLink{a: 1, b: 0, cost: 100}, true, 0},
		{"a lone bridge joins a line", []uint16{prio, prio, prio}, []topoLink{{a: 0, b: 1, cost: 100}},
			topoLink{a: 2, b: 1, cost: 100}, true, 0},
		{"a shortcut in a line of 4", []uint16{prio, prio, prio, prio},
			[]topoLink{{a: 0, b: 1, cost: 100}, {a: 1, b: 2, cost: 100}, {a: 2, b: 3, cost: 100}},
			topoLink{a: 3, b: 0, cost: 50}, true, 0},
		{"a better root joins", []uint16{prio, prio, 0x1000}, []topoLink{{a: 0, b: 1, cost: 100}},
			topoLink{a: 2, b: 1, cost: 100}, true, 2},
		{"a redundant link", []uint16{prio, prio, prio},
			[]topoLink{{a: 0, b: 1, cost: 100}, {a: 1, b: 2, cost: 100}},
			topoLink{a: 2, b: 0, cost: 500}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := topology{prios: tt.prios, links: tt.links}.buildRSTP(t)
			l.run(rstpBoundStart)
			l.check = l.loopFree
			i := l.connectLive(tt.newLink.a, tt.newLink.b, p2p(tt.newLink.cost), p2p(tt.newLink.cost))
			t0 := l.elapsed()
			took, ok := l.runUntil(time.Minute, func() bool { return l.treeReport() == "" })
			fwd := slices.Contains(l.forwardingLinks(), i)
			t.Logf("tree in %v after the link came up; new link forwarding %v", took, fwd)
			if !ok || took > l100ms || fwd != tt.wantFwd {
				t.Errorf("tree %v after %v, new link forwarding %v (want %v): %s\n%s", ok, took, fwd, tt.wantFwd, l.treeReport(), l.dump())
			}
			if got, want := l.nodes[0].br.Status().RootID, l.nodes[tt.wantRoot].br.Status().BridgeID; got != want {
				t.Errorf("root %v, want %v", got, want)
			}
			// No port of the new link went through a forward delay.
			for _, e := range []end{l.links[i].a, l.links[i].b} {
				for _, a := range l.since(e.node, t0, SetState) {
					if a.Port == e.port && a.State == Forwarding && a.at != t0 {
						t.Errorf("node %d port %d forwarding at %v, link up at %v", e.node, e.port, a.at, t0)
					}
				}
			}
			l.converge(0, time.Minute)
		})
	}
}

// TestRSTPEdgePort: an edge port forwards as soon as it is enabled, with no
// topology change; a BPDU makes it an ordinary port, which it stays until
// its link goes down and up again.
func TestRSTPEdgePort(t *testing.T) {
	l := topology{prios: []uint16{prio, prio}, links: []topoLink{{a: 0, b: 1, cost: 100}}}.buildRSTP(t)
	l.converge(rstpBoundStart, 10*time.Second)
	l.run(10 * time.Second) // the start's topology changes are over
	br := l.nodes[1].br
	edgeCfg := PortConfig{Priority: DefaultPortPriority, PathCost: 100, Edge: true}
	flushesBefore := l.nodes[1].flushes[1]
	no := l.addPort(1, edgeCfg)
	if got := l.nodes[1].states[no]; got != Forwarding {
		t.Fatalf("edge port %v after Enable, want forwarding", got)
	}
	p, _ := statusPort(br, no)
	if !p.Edge || !p.AdminEdge || p.Role != RoleDesignated {
		t.Errorf("edge port status %+v", p)
	}
	if st := br.Status(); st.TopologyChange || l.nodes[1].flushes[1] != flushesBefore {
		t.Errorf("an edge port starting to forward is a topology change: %v, flushes %d -> %d",
			st.TopologyChange, flushesBefore, l.nodes[1].flushes[1])
	}

	// A BPDU (a bridge behind the port after all): no longer edge. The
	// BPDU is inferior, so the port stays designated and forwarding.
	inferior := BPDU{Type: TypeRST, Version: 2, Role: BPDURoleDesignated, RootID: NewBridgeID(0xF000, mac1),
		BridgeID: NewBridgeID(0xF000, mac1), PortID: 0x8001, MaxAge: DefaultMaxAge, HelloTime: DefaultHelloTime, ForwardDelay: DefaultForwardDelay}
	l.apply(1, br.Receive(no, inferior, l.now))
	l.drain()
	p, _ = statusPort(br, no)
	if p.Edge || !p.AdminEdge || p.State != Forwarding {
		t.Errorf("after a BPDU: edge %v admin %v %v", p.Edge, p.AdminEdge, p.State)
	}
	l.run(time.Minute)
	if p, _ = statusPort(br, no); p.Edge {
		t.Error("edge again without a link flap")
	}
	l.apply(1, br.Disable(no, l.now))
	l.apply(1, br.Enable(no, l.now))
	if p, _ = statusPort(br, no); !p.Edge || p.State != Forwarding {
		t.Errorf("after a link flap: edge %v %v", p.Edge, p.State)
	}

	// A superior BPDU on an edge port: it is a bridge's root port now.
	better := inferior
	better.RootID, better.BridgeID = NewBridgeID(0x1000, mac1), NewBridgeID(0x1000, mac1)
	l.apply(1, br.Receive(no, better, l.now))
	if st := br.Status(); st.RootPort != no || st.RootID != better.RootID {
		t.Errorf("root port %d root %v after a superior BPDU on the edge port", st.RootPort, st.RootID)
	}
}

// TestRSTPFallbackToSTP: an RSTP bridge next to an 802.1D bridge speaks
// 802.1D on that port (after MigrateTime), and the link comes up with
// 802.1D's timing; both agree on the root. Towards RSTP neighbours the
// same bridge stays rapid.
func TestRSTPFallbackToSTP(t *testing.T) {
	tests := []struct {
		name   string
		protos []Protocol
		kernel bool // the 802.1D bridge drops RST BPDUs, as Linux does
		// The RSTP port's protocol: an 802.1D bridge that takes RST BPDUs
		// as config BPDUs (802.1D-2004 9.3.4, and this package) and has
		// nothing to say on the link, its root port, is never heard.
		wantProto Protocol
	}{
		{"802.1D root, RSTP bridge", []Protocol{ProtocolSTP, ProtocolRSTP, ProtocolRSTP}, false, ProtocolSTP},
		{"RSTP root, 802.1D bridge", []Protocol{ProtocolRSTP, ProtocolSTP, ProtocolRSTP}, false, ProtocolRSTP},
		{"Linux-like 802.1D root, RSTP bridge", []Protocol{ProtocolSTP, ProtocolRSTP, ProtocolRSTP}, true, ProtocolSTP},
		{"RSTP root, Linux-like 802.1D bridge", []Protocol{ProtocolRSTP, ProtocolSTP, ProtocolRSTP}, true, ProtocolSTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLabProtocols(t, tt.protos, 0x1000, prio, prio)
			rn, sn := 0, 1 // the RSTP and 802.1D ends of the mixed link
			if tt.protos[0] == ProtocolSTP {
				rn, sn = 1, 0
			}
			l.nodes[sn].kernel = tt.kernel
			mixed := l.connectLive(0, 1, p2p(100), p2p(100))
			l.check = l.loopFree
			linkUp := func() bool {
				return l.forwardingLinks() != nil && l.nodes[0].br.Status().RootID == l.nodes[1].br.Status().RootID
			}
			took, ok := l.runUntil(2*time.Minute, linkUp)
			t.Logf("802.1D link forwarding after %v", took)
			if !ok || took < 2*DefaultForwardDelay || took > DefaultMaxAge+2*DefaultForwardDelay {
				t.Errorf("802.1D link: tree %v after %v, want 802.1D timing, %v to %v\n%s",
					ok, took, 2*DefaultForwardDelay, DefaultMaxAge+2*DefaultForwardDelay, l.dump())
			}
			p, _ := statusPort(l.nodes[rn].br, l.portOn(rn, mixed))
			if p.Protocol != tt.wantProto {
				t.Errorf("RSTP bridge's port towards 802.1D speaks %v", p.Protocol)
			}
			for n, nd := range l.nodes[:2] {
				if got, want := nd.br.Status().RootID, NewBridgeID(0x1000, [6]byte{2, 0, 0, 0, 0, 1}); got != want {
					t.Errorf("node %d root %v, want %v", n, got, want)
				}
			}

			// An RSTP neighbour of the RSTP bridge still gets a rapid link.
			rapid := l.connectLive(2, rn, p2p(100), p2p(100))
			took, ok = l.runUntil(time.Minute, func() bool { return l.treeReport() == "" })
			if !ok || took > l100ms {
				t.Errorf("RSTP link: tree %v after %v\n%s", ok, took, l.dump())
			}
			if p, _ := statusPort(l.nodes[rn].br, l.portOn(rn, rapid)); p.Protocol != ProtocolRSTP {
				t.Errorf("port towards RSTP speaks %v", p.Protocol)
			}
			l.converge(0, time.Minute)

			// A topology change on the 802.1D bridge reaches the RSTP
			// bridge by TCN, which acknowledges it; a change on the RSTP
			// side reaches the 802.1D bridge as TC.
			l.waitQuiet()
			edge := l.addPort(sn, DefaultPortConfig())
			if _, ok := l.runUntil(time.Minute, func() bool { return l.nodes[sn].states[edge] == Forwarding }); !ok {
				t.Fatal("802.1D bridge's new port never forwards")
			}
			l.run(DefaultHelloTime + l.step)
			if st := l.nodes[sn].br.Status(); st.TopologyChangeDetected && !st.IsRoot() {
				t.Errorf("802.1D bridge's TCN not acknowledged")
			}
			if st := l.nodes[sn].br.Status(); !st.TopologyChange {
				t.Errorf("802.1D bridge did not hear of the change")
			}
			if n := l.nodes[rn].flushes[l.portOn(rn, rapid)]; n == 0 {
				t.Errorf("RSTP bridge did not flush its other ports")
			}

			// mcheck: the port tries RSTP again, and falls back once it
			// hears the 802.1D root's next config BPDU after MigrateTime.
			if sn != 0 {
				return
			}
			acts, err := l.nodes[rn].br.MCheck(l.portOn(rn, mixed), l.now)
			if err != nil {
				t.Fatal(err)
			}
			l.apply(rn, acts)
			l.drain()
			if p, _ := statusPort(l.nodes[rn].br, l.portOn(rn, mixed)); p.Protocol != ProtocolRSTP {
				t.Errorf("after mcheck the port speaks %v", p.Protocol)
			}
			l.run(MigrateTime + DefaultHelloTime + time.Second)
			if p, _ := statusPort(l.nodes[rn].br, l.portOn(rn, mixed)); p.Protocol != ProtocolSTP {
				t.Errorf("after mcheck and an 802.1D hello the port speaks %v", p.Protocol)
			}
			l.converge(0, time.Minute)
		})
	}
}

// TestRSTPRootGuard: a superior bridge behind a root-guarded port is held
// back (alternate, discarding, root-inconsistent) and nobody follows it;
// once it stops, its information ages out in three hellos and the port
// serves the segment again.
func TestRSTPRootGuard(t *testing.T) {
	tests := []struct {
		name             string
		vmPrio           uint16
		wantState        PortState
		wantRole         Role
		wantInconsistent bool
	}{
		{"superior VM is held back", 0x1000, Discarding, RoleAlternate, true},
		{"inferior VM is served", 0xF000, Forwarding, RoleDesignated, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLabProtocols(t, []Protocol{ProtocolRSTP, ProtocolRSTP, ProtocolRSTP}, prio, prio, tt.vmPrio)
			l.connectLive(0, 1, p2p(100), p2p(100))
			guarded := p2p(100)
			guarded.RootGuard = true
			tapLink := l.connectLive(0, 2, guarded, p2p(100))
			tap := l.portOn(0, tapLink)
			a, vm := l.nodes[0].br, l.nodes[2].br
			superior := tt.vmPrio < prio
			l.check = func() {
				p, _ := statusPort(a, tap)
				if superior && (p.Role == RoleRoot || p.State.Learns()) {
					t.Fatalf("%v: TAP port %v %v", l.elapsed(), p.Role, p.State)
				}
				for n := range 2 {
					if l.nodes[n].br.Status().RootID == vm.Status().BridgeID {
						t.Fatalf("%v: node %d follows the VM", l.elapsed(), n)
					}
				}
			}
			l.run(time.Minute)
			p, _ := statusPort(a, tap)
			if p.State != tt.wantState || p.Role != tt.wantRole || p.RootInconsistent != tt.wantInconsistent {
				t.Errorf("TAP port %v %v inconsistent %v, want %v %v %v\n%s",
					p.State, p.Role, p.RootInconsistent, tt.wantState, tt.wantRole, tt.wantInconsistent, l.dump())
			}
			if !superior {
				return
			}
			l.check = nil
			l.kill(2)
			took, ok := l.runUntil(time.Minute, func() bool {
				p, _ := statusPort(a, tap)
				return p.State == Forwarding
			})
			p, _ = statusPort(a, tap)
			t.Logf("recovered in %v", took)
			if !ok || took > 3*DefaultHelloTime+DefaultMaxAge+DefaultHelloTime || p.RootInconsistent || p.Role != RoleDesignated {
				t.Errorf("TAP port %v %v inconsistent %v after %v", p.State, p.Role, p.RootInconsistent, took)
			}
		})
	}
}

// TestRSTPTopologyChange: a port that starts forwarding flushes the
// addresses of the bridge's other ports, and the TC flag carries the flush
// across the tree, without TCNs or short ageing.
func TestRSTPTopologyChange(t *testing.T) {
	l := topology{prios: []uint16{prio, prio, prio},
		links: []topoLink{{a: 0, b: 1, cost: 100}, {a: 1, b: 2, cost: 100}}}.buildRSTP(t)
	l.converge(rstpBoundStart, 10*time.Second)
	l.run(10 * time.Second)
	for n, nd := range l.nodes {
		if nd.br.Status().TopologyChange {
			t.Fatalf("node %d: topology change still on", n)
		}
	}
	before := make([]map[PortNo]int, 3)
	for n, nd := range l.nodes {
		before[n] = maps.Clone(nd.flushes)
	}
	t0 := l.elapsed()
	// A new port on node 2 starts forwarding.
	no := l.addPort(2, p2p(100)) // nobody behind it: forwards after its timers
	took, ok := l.runUntil(time.Minute, func() bool { return l.nodes[2].states[no] == Forwarding })
	t.Logf("unanswered designated port forwarding after %v", took)
	if !ok {
		t.Fatal("new port never forwards")
	}
	l.run(l.step)
	// Every bridge flushed once every port but the one the change came
	// from: node 2 its port 1 (to node 1), node 1 its port 1 (to node 0).
	want := map[int]map[PortNo]int{0: {1: 0}, 1: {1: 1, 2: 0}, 2: {1: 1}}
	for n, ports := range want {
		for p, w := range ports {
			if got := l.nodes[n].flushes[p] - before[n][p]; got != w {
				t.Errorf("node %d port %d flushed %d times, want %d", n, p, got, w)
			}
		}
	}
	for n := range l.nodes {
		for _, a := range l.since(n, t0, SendBPDU) {
			if a.BPDU.Type != TypeRST {
				t.Errorf("node %d sent %v", n, a.BPDU.Type)
			}
		}
		if got := len(l.since(n, t0, SetAgeing)); got != 0 {
			t.Errorf("node %d shortened its ageing", n)
		}
	}
	l.run(10 * time.Second)
	for n, nd := range l.nodes {
		if nd.br.Status().TopologyChange {
			t.Errorf("node %d: topology change still on", n)
		}
	}
}

// TestRSTPRandomNetworks: random graphs of RSTP bridges shaken by link
// failures, silent links, repairs, cost and priority changes end in a
// spanning tree once healed.
func TestRSTPRandomNetworks(t *testing.T) {
	for seed := range randomSeeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x125e))
			n := 3 + rng.IntN(5)
			prios := make([]uint16, n)
			protos := make([]Protocol, n)
			for i := range prios {
				prios[i] = uint16(rng.IntN(4)) << 12
				protos[i] = ProtocolRSTP
			}
			l := newLabProtocols(t, protos, prios...)
			for i := 1; i < n; i++ {
				c := uint32(1+rng.IntN(4)) * 50
				l.connectLive(i, rng.IntN(i), p2p(c), p2p(c))
			}
			for range rng.IntN(2 * n) {
				a, b := rng.IntN(n), rng.IntN(n)
				if a != b {
					c := uint32(1+rng.IntN(4)) * 50
					l.connectLive(a, b, p2p(c), p2p(c))
				}
			}
			l.converge(rstpBoundStart, 5*time.Second)
			l.check = l.loopFree
			for range 1 + rng.IntN(6) {
				l.run(time.Duration(rng.IntN(20_000)) * time.Millisecond)
				silent := make([]bool, len(l.links))
				for i, lk := range l.links {
					silent[i] = lk.silent
				}
				l.randomEvent(rng)
				for i, lk := range l.links {
					if lk.silent != silent[i] {
						lk.quietAt = l.now
					}
				}
			}
			for i, lk := range l.links {
				if lk.silent {
					lk.quietAt = l.now
				}
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
			// Never slower than 802.1D; count to infinity after a better
			// bridge got worse can take about max age.
			took := settled.Sub(last)
			t.Logf("settled %v after the last event", took)
			if took > boundFailure {
				t.Errorf("settled %v after the last event, bound %v", took, boundFailure)
			}
		})
	}
}
