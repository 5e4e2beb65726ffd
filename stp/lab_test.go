package stp

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// A lab wires N pure Bridges with in-memory links and steps a fake clock.
// SendBPDU actions travel through the codec (AppendFrame, DecodeFrame) to
// the peer port; links can go down (both ends disabled, as a carrier loss)
// or silent (frames lost, ports up, as a tunnel whose peer stopped); bridges
// can die (they fall silent).

var labEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type end struct {
	node int
	port PortNo
}

type labLink struct {
	a, b   end
	down   bool // carrier lost: both ends disabled
	silent bool // frames lost in both directions
	// when silent was last set or cleared; until both ends have heard a
	// hello, a link that comes back from silence forwards at both ends
	quietAt time.Time
}

type labNode struct {
	br      *Bridge
	mac     [6]byte
	dead    bool
	kernel  bool // drops RST BPDUs, as a Linux bridge does
	nextNo  PortNo
	states  map[PortNo]PortState // as told by SetState actions
	ageing  time.Duration        // as told by SetAgeing/RestoreAgeing; 0 normal
	flushes map[PortNo]int
	log     []stamped // every action, with its time
}

type stamped struct {
	at time.Duration // since the lab's start
	Action
}

type labDelivery struct {
	to end
	m  BPDU
}

type lab struct {
	t     testing.TB
	now   time.Time
	step  time.Duration
	nodes []*labNode
	links []*labLink
	peer  map[end]int // end -> link index
	queue []labDelivery
	check func() // called after every step, if set
}

// newLab makes one bridge per priority, with addresses 02:00:00:00:00:01,
// :02, ... in order, so equal priorities elect node 0.
func newLab(t testing.TB, prios ...uint16) *lab {
	t.Helper()
	return newLabProtocols(t, nil, prios...)
}

// newLabProtocols is newLab with bridge n running protos[n] (STP if protos
// is short).
func newLabProtocols(t testing.TB, protos []Protocol, prios ...uint16) *lab {
	t.Helper()
	l := &lab{t: t, now: labEpoch, step: 100 * time.Millisecond, peer: map[end]int{}}
	for i, prio := range prios {
		cfg := DefaultConfig([6]byte{2, 0, 0, 0, 0, byte(i + 1)})
		cfg.Priority = prio
		if i < len(protos) {
			cfg.Protocol = protos[i]
		}
		br, err := New(cfg, l.now)
		if err != nil {
			t.Fatal(err)
		}
		l.nodes = append(l.nodes, &labNode{br: br, mac: cfg.MAC, nextNo: 1,
			states: map[PortNo]PortState{}, flushes: map[PortNo]int{}})
	}
	return l
}

// addPort adds and enables the next port of node n.
func (l *lab) addPort(n int, cfg PortConfig) PortNo {
	nd := l.nodes[n]
	no := nd.nextNo
	nd.nextNo++
	acts, err := nd.br.AddPort(no, cfg, l.now)
	if err != nil {
		l.t.Fatal(err)
	}
	nd.states[no] = Disabled
	l.apply(n, acts)
	l.apply(n, nd.br.Enable(no, l.now))
	l.drain()
	return no
}

// connect links a and b with a new port on each, both of the given cost,
// and returns the link's index.
func (l *lab) connect(a, b int, cost uint32) int {
	return l.connectPorts(a, b, PortConfig{Priority: DefaultPortPriority, PathCost: cost},
		PortConfig{Priority: DefaultPortPriority, PathCost: cost})
}

func (l *lab) connectPorts(a, b int, ca, cb PortConfig) int {
	i := len(l.links)
	lk := &labLink{a: end{a, l.addPort(a, ca)}, b: end{b, l.addPort(b, cb)}}
	l.links = append(l.links, lk)
	l.peer[lk.a], l.peer[lk.b] = i, i
	return i
}

// portOn returns node n's port on link i.
func (l *lab) portOn(n, i int) PortNo {
	lk := l.links[i]
	switch n {
	case lk.a.node:
		return lk.a.port
	case lk.b.node:
		return lk.b.port
	}
	l.t.Fatalf("node %d is not on link %d", n, i)
	return 0
}

func (l *lab) elapsed() time.Duration { return l.now.Sub(labEpoch) }

// apply carries out node n's actions.
func (l *lab) apply(n int, acts []Action) {
	l.t.Helper()
	nd := l.nodes[n]
	for _, a := range acts {
		nd.log = append(nd.log, stamped{l.elapsed(), a})
		switch a.Kind {
		case SendBPDU:
			l.send(n, a)
		case SetState:
			legal := legalTransition
			if nd.br.proto == ProtocolRSTP {
				legal = legalRSTPTransition
			}
			if old := nd.states[a.Port]; !legal(old, a.State) {
				l.t.Fatalf("%v: node %d port %d: %v -> %v", l.elapsed(), n, a.Port, old, a.State)
			}
			nd.states[a.Port] = a.State
		case FlushFDB:
			// RSTP flushes forwarding ports when a topology change
			// reaches them; 802.1D only flushes ports that stop learning.
			if nd.states[a.Port].Learns() && nd.br.proto == ProtocolSTP {
				l.t.Fatalf("node %d port %d flushed while %v", n, a.Port, nd.states[a.Port])
			}
			nd.flushes[a.Port]++
		case SetAgeing:
			nd.ageing = a.Ageing
		case RestoreAgeing:
			nd.ageing = 0
		default:
			l.t.Fatalf("unexpected action %v", a)
		}
	}
}

// legalRSTPTransition: Disabled, Discarding, Learning, Forwarding, in that
// order up, straight to Discarding or Disabled down.
func legalRSTPTransition(from, to PortState) bool {
	switch to {
	case Disabled:
		return from != Disabled
	case Discarding:
		return from != Discarding
	case Learning:
		return from == Discarding
	case Forwarding:
		return from == Learning
	}
	return false
}

func legalTransition(from, to PortState) bool {
	switch to {
	case Disabled:
		return from != Disabled
	case Blocking:
		return from != Blocking
	case Listening:
		return from == Blocking
	case Learning:
		return from == Listening
	case Forwarding:
		return from == Learning
	}
	return false
}

// send puts a BPDU on the wire: through the codec, to the peer port.
func (l *lab) send(n int, a Action) {
	l.t.Helper()
	nd := l.nodes[n]
	if st := nd.states[a.Port]; st == Disabled {
		l.t.Fatalf("node %d sends on disabled port %d", n, a.Port)
	}
	frame, err := AppendFrame(nil, nd.mac, a.BPDU)
	if err != nil {
		l.t.Fatalf("encode %+v: %v", a.BPDU, err)
	}
	m, err := DecodeFrame(frame)
	if err != nil || m != a.BPDU {
		l.t.Fatalf("codec: sent %+v, decoded %+v, %v", a.BPDU, m, err)
	}
	i, ok := l.peer[end{n, a.Port}]
	if !ok {
		return // an edge port: nobody listens
	}
	lk := l.links[i]
	to := lk.a
	if to == (end{n, a.Port}) {
		to = lk.b
	}
	if lk.down || lk.silent || nd.dead || l.nodes[to.node].dead || l.nodes[to.node].kernel && m.Type == TypeRST {
		return
	}
	l.queue = append(l.queue, labDelivery{to, m})
}

// drain delivers the BPDUs in flight, and those their delivery causes.
func (l *lab) drain() {
	for i := 0; len(l.queue) > 0; i++ {
		if i > 100_000 {
			l.t.Fatal("BPDU storm")
		}
		d := l.queue[0]
		l.queue = l.queue[1:]
		l.apply(d.to.node, l.nodes[d.to.node].br.Receive(d.to.port, d.m, l.now))
	}
}

// run advances the clock by d in steps.
func (l *lab) run(d time.Duration) {
	l.t.Helper()
	for end := l.now.Add(d); l.now.Before(end); {
		l.tick()
	}
}

func (l *lab) tick() {
	l.t.Helper()
	l.now = l.now.Add(l.step)
	for n, nd := range l.nodes {
		if !nd.dead {
			l.apply(n, nd.br.Tick(l.now))
		}
	}
	l.drain()
	l.checkStatus()
	if l.check != nil {
		l.check()
	}
}

// runUntil steps until ok holds, for at most max; it returns how long it took.
func (l *lab) runUntil(max time.Duration, ok func() bool) (time.Duration, bool) {
	l.t.Helper()
	start := l.now
	for !ok() {
		if l.now.Sub(start) >= max {
			return l.now.Sub(start), false
		}
		l.tick()
	}
	return l.now.Sub(start), true
}

// checkStatus checks that Status agrees with the actions the lab carried out.
func (l *lab) checkStatus() {
	l.t.Helper()
	for n, nd := range l.nodes {
		if nd.dead {
			continue
		}
		st := nd.br.Status()
		for _, p := range st.Ports {
			if nd.states[p.No] != p.State {
				l.t.Fatalf("%v: node %d port %d: status %v, actions said %v", l.elapsed(), n, p.No, p.State, nd.states[p.No])
			}
		}
		want := time.Duration(0)
		if st.TopologyChange && st.Protocol == ProtocolSTP {
			want = st.ForwardDelay
		}
		if nd.ageing != want {
			l.t.Fatalf("%v: node %d: ageing %v with topology change %v", l.elapsed(), n, nd.ageing, st.TopologyChange)
		}
	}
}

// link down and up: carrier loss, seen by both ends.
func (l *lab) linkDown(i int) {
	lk := l.links[i]
	lk.down = true
	for _, e := range []end{lk.a, lk.b} {
		if !l.nodes[e.node].dead {
			l.apply(e.node, l.nodes[e.node].br.Disable(e.port, l.now))
		}
	}
	l.drain()
}

func (l *lab) linkUp(i int) {
	lk := l.links[i]
	lk.down = false
	for _, e := range []end{lk.a, lk.b} {
		l.apply(e.node, l.nodes[e.node].br.Enable(e.port, l.now))
	}
	l.drain()
}

// kill stops a bridge: it no longer ticks, sends or receives.
func (l *lab) kill(n int) { l.nodes[n].dead = true }

// treeReport checks that the live bridges have converged on a spanning tree:
// all agree on the root (the best live bridge), every up port is Forwarding
// or Blocking, and the links forwarding at both ends connect all live
// bridges without a loop. It returns "" or what is wrong.
func (l *lab) treeReport() string {
	var live []int
	root := BridgeID(^uint64(0))
	for n, nd := range l.nodes {
		if !nd.dead {
			live = append(live, n)
			root = min(root, nd.br.Status().BridgeID)
		}
	}
	for _, n := range live {
		st := l.nodes[n].br.Status()
		if st.RootID != root {
			return fmt.Sprintf("node %d: root %v, want %v", n, st.RootID, root)
		}
		for _, p := range st.Ports {
			if p.State != Forwarding && p.State != Blocking && p.State != Discarding && p.State != Disabled {
				return fmt.Sprintf("node %d port %d %v", n, p.No, p.State)
			}
		}
	}
	parent := map[int]int{}
	var find func(int) int
	find = func(n int) int {
		if p, ok := parent[n]; ok && p != n {
			return find(p)
		}
		return n
	}
	edges := 0
	for i, lk := range l.links {
		if lk.down || lk.silent || l.nodes[lk.a.node].dead || l.nodes[lk.b.node].dead {
			continue
		}
		if l.nodes[lk.a.node].states[lk.a.port] != Forwarding || l.nodes[lk.b.node].states[lk.b.port] != Forwarding {
			continue
		}
		ra, rb := find(lk.a.node), find(lk.b.node)
		if ra == rb {
			return fmt.Sprintf("link %d closes a loop", i)
		}
		parent[ra] = rb
		edges++
	}
	if edges != len(live)-1 {
		return fmt.Sprintf("%d forwarding links for %d bridges: not connected", edges, len(live))
	}
	return ""
}

// forwardingLinks lists the working links forwarding at both ends, to check
// that a converged tree stays put.
func (l *lab) forwardingLinks() []int {
	var out []int
	for i, lk := range l.links {
		if lk.down || lk.silent || l.nodes[lk.a.node].dead || l.nodes[lk.b.node].dead {
			continue
		}
		if l.nodes[lk.a.node].states[lk.a.port] == Forwarding && l.nodes[lk.b.node].states[lk.b.port] == Forwarding {
			out = append(out, i)
		}
	}
	return out
}

// converge waits for a spanning tree, at most max, then checks that it holds
// still for another settle period. It returns the time to converge.
func (l *lab) converge(max, settle time.Duration) time.Duration {
	l.t.Helper()
	took, ok := l.runUntil(max, func() bool { return l.treeReport() == "" })
	if !ok {
		l.t.Fatalf("no spanning tree after %v: %s\n%s", took, l.treeReport(), l.dump())
	}
	links := l.forwardingLinks()
	check := l.check
	l.check = func() {
		if check != nil {
			check()
		}
		if r := l.treeReport(); r != "" || !slices.Equal(l.forwardingLinks(), links) {
			l.t.Fatalf("%v: tree changed after converging: %s\n%s", l.elapsed(), r, l.dump())
		}
	}
	l.run(settle)
	l.check = check
	return took
}

// blockedPorts lists the up ports that are not Forwarding, as "node:port".
func (l *lab) blockedPorts() []string {
	var out []string
	for n, nd := range l.nodes {
		if nd.dead {
			continue
		}
		for _, p := range nd.br.Status().Ports {
			if p.State != Forwarding && p.State != Disabled {
				out = append(out, fmt.Sprintf("%d:%d", n, p.No))
			}
		}
	}
	return out
}

func (l *lab) dump() string {
	var sb strings.Builder
	for n, nd := range l.nodes {
		st := nd.br.Status()
		fmt.Fprintf(&sb, "node %d %v root %v cost %d root port %d dead %v\n", n, st.BridgeID, st.RootID, st.RootPathCost, st.RootPort, nd.dead)
		for _, p := range st.Ports {
			fmt.Fprintf(&sb, "  port %d %v %v designated %v/%v/%v cost %d inconsistent %v\n",
				p.No, p.State, p.Role, p.DesignatedRoot, p.DesignatedBridge, p.DesignatedPort, p.DesignatedCost, p.RootInconsistent)
		}
	}
	return sb.String()
}

// since returns node n's actions of the given kind logged at or after t.
func (l *lab) since(n int, t time.Duration, kind ActionKind) []stamped {
	var out []stamped
	for _, a := range l.nodes[n].log {
		if a.at >= t && a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// settleTime ticks for d and returns when the tree last became stable: a
// spanning tree whose forwarding links no longer change. Zero if it never
// did.
func (l *lab) settleTime(d time.Duration) time.Time {
	var settled time.Time
	var links []int
	for range d / l.step {
		l.tick()
		if l.treeReport() != "" || !slices.Equal(l.forwardingLinks(), links) {
			settled, links = time.Time{}, l.forwardingLinks()
		} else if settled.IsZero() {
			settled = l.now
		}
	}
	return settled
}

// checkBlocked checks that exactly the ports of blocked (node, link) pairs
// neither learn nor forward.
func (l *lab) checkBlocked(t *testing.T, blocked []nodeLink) {
	t.Helper()
	var want []string
	for _, nl := range blocked {
		want = append(want, fmt.Sprintf("%d:%d", nl.node, l.portOn(nl.node, nl.link)))
	}
	slices.Sort(want)
	if got := l.blockedPorts(); !slices.Equal(got, want) {
		t.Errorf("blocked ports %v, want %v\n%s", got, want, l.dump())
	}
}
