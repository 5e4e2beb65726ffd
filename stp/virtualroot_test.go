package stp

import (
	"testing"
	"time"
)

// A small network of 802.1D Bridges (as kernel bridges) and VirtualRoot
// edge ports of one region, wired point to point, BPDUs through the codec,
// time stepped by hand.

type vrEnd struct {
	vr   bool // a VirtualRoot (node indexes vrs), else a Bridge's port
	node int
	port PortNo
}

type vrNet struct {
	t       *testing.T
	now     time.Time
	bridges []*Bridge
	vrs     []*VirtualRoot
	peer    map[vrEnd]vrEnd
	silent  map[vrEnd]bool // frames sent by this end are lost
	states  map[vrEnd]PortState
	flushes map[vrEnd]int
	queue   []vrDelivery
}

type vrDelivery struct {
	to vrEnd
	m  BPDU
}

var (
	regionRoot = NewBridgeID(0x7000, [6]byte{0x02, 0x6c, 0, 0, 0, 0x10})
	vrTimers   = VirtualRootConfig{HelloTime: time.Second, MaxAge: 6 * time.Second, ForwardDelay: 4 * time.Second}
)

func newVRNet(t *testing.T) *vrNet {
	return &vrNet{t: t, now: labEpoch, peer: map[vrEnd]vrEnd{}, silent: map[vrEnd]bool{},
		states: map[vrEnd]PortState{}, flushes: map[vrEnd]int{}}
}

// addBridge adds an 802.1D bridge (a Linux bridge's protocol and default
// priority) with address ...:0n.
func (n *vrNet) addBridge(last byte) int {
	cfg := DefaultConfig([6]byte{2, 0, 0, 0, 0, last})
	cfg.HelloTime, cfg.MaxAge, cfg.ForwardDelay = time.Second, 6*time.Second, 4*time.Second
	b, err := New(cfg, n.now)
	if err != nil {
		n.t.Fatal(err)
	}
	n.bridges = append(n.bridges, b)
	return len(n.bridges) - 1
}

// addVR adds an edge port of the region with port number no.
func (n *vrNet) addVR(no PortNo) int {
	cfg := vrTimers
	cfg.Root, cfg.Port, cfg.PortNo = regionRoot, NewPortID(DefaultPortPriority, no), 1
	v, err := NewVirtualRoot(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	n.vrs = append(n.vrs, v)
	return len(n.vrs) - 1
}

// bridgePort adds port no of bridge b at cost.
func (n *vrNet) bridgePort(b int, no PortNo, cost uint32) vrEnd {
	acts, err := n.bridges[b].AddPort(no, PortConfig{Priority: DefaultPortPriority, PathCost: cost}, n.now)
	if err != nil {
		n.t.Fatal(err)
	}
	e := vrEnd{node: b, port: no}
	n.apply(e, acts)
	return e
}

func (n *vrNet) vrEndOf(i int) vrEnd { return vrEnd{vr: true, node: i, port: 1} }

// connect wires a and b and brings both up.
func (n *vrNet) connect(a, b vrEnd) {
	n.peer[a], n.peer[b] = b, a
	n.enable(a)
	n.enable(b)
	n.drain()
}

func (n *vrNet) enable(e vrEnd) {
	if e.vr {
		n.apply(e, n.vrs[e.node].Enable(n.now))
		return
	}
	n.apply(e, n.bridges[e.node].Enable(e.port, n.now))
}

func (n *vrNet) apply(from vrEnd, acts []Action) {
	for _, a := range acts {
		e := from
		e.port = a.Port
		switch a.Kind {
		case SetState:
			n.states[e] = a.State
		case FlushFDB:
			n.flushes[e]++
		case SendBPDU:
			frame, err := AppendFrame(nil, [6]byte{2, 0, 0, 0, 9, 9}, a.BPDU)
			if err != nil {
				n.t.Fatal(err)
			}
			m, err := DecodeFrame(frame)
			if err != nil {
				n.t.Fatal(err)
			}
			if to, ok := n.peer[e]; ok && !n.silent[e] {
				n.queue = append(n.queue, vrDelivery{to, m})
			}
		}
	}
}

func (n *vrNet) drain() {
	for len(n.queue) > 0 {
		d := n.queue[0]
		n.queue = n.queue[1:]
		if d.to.vr {
			n.apply(d.to, n.vrs[d.to.node].Receive(d.m, n.now))
		} else {
			n.apply(d.to, n.bridges[d.to.node].Receive(d.to.port, d.m, n.now))
		}
	}
}

// run steps the clock by 100 ms for d.
func (n *vrNet) run(d time.Duration) {
	for end := n.now.Add(d); n.now.Before(end); {
		n.now = n.now.Add(100 * time.Millisecond)
		for i, v := range n.vrs {
			n.apply(n.vrEndOf(i), v.Tick(n.now))
		}
		for i, b := range n.bridges {
			n.apply(vrEnd{node: i}, b.Tick(n.now))
		}
		n.drain()
	}
}

func (n *vrNet) state(e vrEnd) PortState { return n.states[e] }

// TestVirtualRootAlone: an edge port announces the region's root at cost 0
// from its first call, listens and learns a forward delay each, forwards,
// sets TC for max age + forward delay after it starts forwarding, and says
// hello every hello time.
func TestVirtualRootAlone(t *testing.T) {
	cfg := vrTimers
	cfg.Root, cfg.Port, cfg.PortNo = regionRoot, NewPortID(DefaultPortPriority, 7), 3
	v, err := NewVirtualRoot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := labEpoch
	acts := v.Enable(now)
	if len(acts) != 2 || acts[0].Kind != SetState || acts[0].State != Listening || acts[1].Kind != SendBPDU || acts[1].Port != 3 {
		t.Fatalf("enable: %v", acts)
	}
	m := acts[1].BPDU
	if m.Type != TypeConfig || m.Version != 0 || m.RootID != regionRoot || m.BridgeID != regionRoot || m.RootPathCost != 0 ||
		m.PortID != 0x8007 || m.MessageAge != 0 || m.HelloTime != time.Second || m.MaxAge != 6*time.Second || m.ForwardDelay != 4*time.Second {
		t.Fatalf("first bpdu %+v", m)
	}
	var sent, ageing, restore int
	var forwardingAt, learningAt time.Duration
	for ; now.Before(labEpoch.Add(30 * time.Second)); now = now.Add(100 * time.Millisecond) {
		for _, a := range v.Tick(now) {
			switch {
			case a.Kind == SendBPDU:
				sent++
				wantTC := forwardingAt != 0 && now.Sub(labEpoch) < forwardingAt+10*time.Second
				if a.BPDU.TopologyChange != wantTC {
					t.Errorf("at %v: TC %v", now.Sub(labEpoch), a.BPDU.TopologyChange)
				}
			case a.Kind == SetState && a.State == Learning:
				learningAt = now.Sub(labEpoch)
			case a.Kind == SetState && a.State == Forwarding:
				forwardingAt = now.Sub(labEpoch)
			case a.Kind == SetAgeing:
				ageing++
				if a.Ageing != 4*time.Second {
					t.Errorf("short ageing %v", a.Ageing)
				}
			case a.Kind == RestoreAgeing:
				restore++
				if d := now.Sub(labEpoch) - forwardingAt; d != 10*time.Second {
					t.Errorf("TC lasted %v, want max age + forward delay", d)
				}
			}
		}
	}
	if learningAt != 4*time.Second || forwardingAt != 8*time.Second {
		t.Errorf("learning at %v, forwarding at %v: want 4s, 8s", learningAt, forwardingAt)
	}
	if ageing != 1 || restore != 1 {
		t.Errorf("SetAgeing %d, RestoreAgeing %d: want one each", ageing, restore)
	}
	if sent < 29 || sent > 31 {
		t.Errorf("%d hellos in 30 s at hello 1 s", sent)
	}
	st := v.Status()
	if !st.IsRoot() || st.RootID != regionRoot || st.Ports[0].State != Forwarding || st.Ports[0].Role != RoleDesignated {
		t.Errorf("status %+v", st)
	}
}

// TestVirtualRootOneBridgeTwoEdgePorts: an 802.1D bridge that reaches the
// region through two edge ports (a kernel bridge with two nodes' TAPs)
// sees two ports of one root: it names the region's root, makes the edge
// port with the lower port ID its root port and blocks the other; both
// edge ports forward (the bridge does the blocking).
func TestVirtualRootOneBridgeTwoEdgePorts(t *testing.T) {
	n := newVRNet(t)
	b := n.addBridge(1)
	v1, v2 := n.addVR(0x20), n.addVR(0x11)
	p1, p2 := n.bridgePort(b, 1, 100), n.bridgePort(b, 2, 100)
	n.connect(p1, n.vrEndOf(v1))
	n.connect(p2, n.vrEndOf(v2))
	n.run(20 * time.Second)
	st := n.bridges[b].Status()
	if st.RootID != regionRoot || st.RootPort != 2 || st.RootPathCost != 100 {
		t.Fatalf("bridge: root %v via port %d cost %d; want %v via port 2 (the edge port with the lower ID)", st.RootID, st.RootPort, st.RootPathCost, regionRoot)
	}
	if n.state(p1) != Blocking || n.state(p2) != Forwarding {
		t.Errorf("bridge ports: %v %v, want blocking forwarding", n.state(p1), n.state(p2))
	}
	for _, i := range []int{v1, v2} {
		if s := n.state(n.vrEndOf(i)); s != Forwarding {
			t.Errorf("edge port %d: %v, want forwarding", i, s)
		}
	}
}

// TestVirtualRootLANLoop: two sites' bridges joined by a LAN, each with one
// edge port of the region (a LAN loop through two sites): exactly one of
// the six ports blocks, a LAN port of one bridge, and both bridges name
// the region's root.
func TestVirtualRootLANLoop(t *testing.T) {
	n := newVRNet(t)
	b1, b2 := n.addBridge(1), n.addBridge(2)
	v1, v2 := n.addVR(1), n.addVR(2)
	tap1, lan1 := n.bridgePort(b1, 1, 100), n.bridgePort(b1, 2, 2)
	tap2, lan2 := n.bridgePort(b2, 1, 100), n.bridgePort(b2, 2, 2)
	n.connect(tap1, n.vrEndOf(v1))
	n.connect(tap2, n.vrEndOf(v2))
	n.connect(lan1, lan2)
	n.run(20 * time.Second)
	ends := map[string]vrEnd{"tap1": tap1, "lan1": lan1, "tap2": tap2, "lan2": lan2, "edge1": n.vrEndOf(v1), "edge2": n.vrEndOf(v2)}
	var blocked []string
	for name, e := range ends {
		if s := n.state(e); s != Forwarding {
			blocked = append(blocked, name+"="+s.String())
		}
	}
	if len(blocked) != 1 || n.state(lan2) != Blocking {
		t.Errorf("not forwarding: %v; want only lan2 (the LAN port of the bridge with the higher ID)", blocked)
	}
	for i, b := range []int{b1, b2} {
		if st := n.bridges[b].Status(); st.RootID != regionRoot || st.RootPort != 1 {
			t.Errorf("bridge %d: root %v via port %d", i+1, st.RootID, st.RootPort)
		}
	}
}

// TestVirtualRootBackup: two edge ports of the region on one segment that
// runs no STP (two nodes' TAPs on one LAN): the one with the higher port ID
// blocks and falls silent; when the other falls silent it takes over after
// max age, through listening and learning.
func TestVirtualRootBackup(t *testing.T) {
	n := newVRNet(t)
	v1, v2 := n.addVR(1), n.addVR(2)
	e1, e2 := n.vrEndOf(v1), n.vrEndOf(v2)
	n.connect(e1, e2)
	n.run(10 * time.Second)
	if n.state(e1) != Forwarding || n.state(e2) != Blocking || !n.vrs[v2].Backup() {
		t.Fatalf("edge ports %v %v (backup %v): want forwarding, blocking", n.state(e1), n.state(e2), n.vrs[v2].Backup())
	}
	if st := n.vrs[v2].Stats(); st.BackupBlocks != 1 || st.RootGuardBlocks != 0 {
		t.Errorf("counters %+v", st)
	}
	out := n.vrs[v2].Stats().ConfigOut
	n.run(5 * time.Second)
	if got := n.vrs[v2].Stats().ConfigOut; got != out {
		t.Errorf("a backup port sent %d BPDUs", got-out)
	}
	if st := n.vrs[v2].Status(); st.Ports[0].Role != RoleBackup {
		t.Errorf("role %v", st.Ports[0].Role)
	}
	n.silent[e1] = true
	start := n.now
	for n.state(e2) != Forwarding && n.now.Sub(start) < 30*time.Second {
		n.run(100 * time.Millisecond)
	}
	// The last hello heard is up to 1 s old; max age 6 s, then 2 x 4 s.
	if d := n.now.Sub(start); d < 13*time.Second || d > 14*time.Second+100*time.Millisecond {
		t.Errorf("backup forwarded %v after the other fell silent; want max age + 2 forward delays", d)
	}
}

// TestVirtualRootGuard: a bridge that claims a better root than the
// region's blocks the edge port (root-inconsistent, counted, its addresses
// flushed) while it keeps claiming it; the port forwards again through
// listening and learning when the claim ages out, or at once when the
// bridge says less, or when the region's root becomes as good.
func TestVirtualRootGuard(t *testing.T) {
	better := NewBridgeID(0x1000, [6]byte{2, 0, 0, 0, 0, 0x99})
	claim := BPDU{Type: TypeConfig, RootID: better, BridgeID: better, PortID: 0x8001,
		HelloTime: time.Second, MaxAge: 6 * time.Second, ForwardDelay: 4 * time.Second, MessageAge: time.Second}
	newForwarding := func(t *testing.T) (*VirtualRoot, time.Time) {
		cfg := vrTimers
		cfg.Root, cfg.Port, cfg.PortNo = regionRoot, 0x8001, 1
		v, err := NewVirtualRoot(cfg)
		if err != nil {
			t.Fatal(err)
		}
		now := labEpoch
		v.Enable(now)
		now = now.Add(8 * time.Second)
		v.Tick(now)
		if v.State() != Forwarding {
			t.Fatalf("not forwarding after 2 forward delays: %v", v)
		}
		return v, now
	}
	hasAction := func(acts []Action, k ActionKind, s PortState) bool {
		for _, a := range acts {
			if a.Kind == k && (k != SetState || a.State == s) {
				return true
			}
		}
		return false
	}

	t.Run("ages out", func(t *testing.T) {
		v, now := newForwarding(t)
		acts := v.Receive(claim, now)
		if !hasAction(acts, SetState, Blocking) || !hasAction(acts, FlushFDB, 0) || !v.RootInconsistent() {
			t.Fatalf("superior root: %v (%v)", acts, v)
		}
		// Refreshed every second for 10 s: stays blocked.
		for i := 0; i < 10; i++ {
			now = now.Add(time.Second)
			v.Tick(now)
			v.Receive(claim, now)
			if v.State() != Blocking {
				t.Fatalf("unblocked while the claim is refreshed: %v", v)
			}
		}
		if got := v.Stats().RootGuardBlocks; got != 1 {
			t.Errorf("root guard blocks %d, want 1 (one episode)", got)
		}
		// Silent: the claim ages out after max age less its message age
		// (5 s), then listening and learning.
		start := now
		for v.State() != Forwarding && now.Sub(start) < 30*time.Second {
			now = now.Add(100 * time.Millisecond)
			v.Tick(now)
			if v.State() == Listening && v.RootInconsistent() {
				t.Fatal("listening while root-inconsistent")
			}
		}
		if d := now.Sub(start); d != 13*time.Second {
			t.Errorf("forwarding %v after the last claim; want 5 s + 2 x 4 s", d)
		}
	})
	t.Run("says less", func(t *testing.T) {
		v, now := newForwarding(t)
		v.Receive(claim, now)
		worse := claim
		worse.RootID = regionRoot
		worse.RootPathCost = 100
		acts := v.Receive(worse, now.Add(time.Second))
		if v.RootInconsistent() || v.State() != Listening || !hasAction(acts, SendBPDU, 0) {
			t.Errorf("after the bridge gave up its claim: %v, actions %v", v, acts)
		}
		// The same bridge at an ordinary priority, claiming itself.
		v, now = newForwarding(t)
		v.Receive(claim, now)
		ordinary := NewBridgeID(DefaultBridgePriority, better.MAC())
		worse = claim
		worse.RootID, worse.BridgeID = ordinary, ordinary
		v.Receive(worse, now.Add(time.Second))
		if v.RootInconsistent() || v.State() != Listening {
			t.Errorf("after the bridge's priority became ordinary: %v", v)
		}
		// Another bridge saying less leaves the claim held.
		v, now = newForwarding(t)
		v.Receive(claim, now)
		other := worse
		other.BridgeID = NewBridgeID(DefaultBridgePriority, [6]byte{2, 0, 0, 0, 0, 0x55})
		v.Receive(other, now.Add(time.Second))
		if !v.RootInconsistent() {
			t.Errorf("another bridge released the claim: %v", v)
		}
	})
	t.Run("region root as good", func(t *testing.T) {
		v, now := newForwarding(t)
		v.Receive(claim, now)
		acts := v.SetRoot(better, now.Add(time.Second))
		if v.RootInconsistent() || v.State() != Listening || !hasAction(acts, SendBPDU, 0) {
			t.Errorf("after the region's root became the claimed one: %v, actions %v", v, acts)
		}
	})
}

// TestVirtualRootTCN: a TCN is acknowledged at once (hold time allowing)
// and starts a topology change: TC in the BPDUs, short ageing.
func TestVirtualRootTCN(t *testing.T) {
	cfg := vrTimers
	cfg.Root, cfg.Port, cfg.PortNo = regionRoot, 0x8001, 1
	v, err := NewVirtualRoot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := labEpoch
	v.Enable(now)
	now = now.Add(500 * time.Millisecond)
	acts := v.Receive(BPDU{Type: TypeTCN}, now) // within the hold time of the first BPDU
	for _, a := range acts {
		if a.Kind == SendBPDU {
			t.Fatalf("BPDU within the hold time: %v", acts)
		}
	}
	if len(acts) != 1 || acts[0].Kind != SetAgeing {
		t.Fatalf("TCN: %v", acts)
	}
	now = now.Add(500 * time.Millisecond)
	acts = v.Tick(now)
	if len(acts) != 1 || acts[0].Kind != SendBPDU || !acts[0].BPDU.TopologyChangeAck || !acts[0].BPDU.TopologyChange {
		t.Fatalf("after the hold time: %v", acts)
	}
	now = now.Add(time.Second)
	acts = v.Tick(now)
	if len(acts) != 1 || acts[0].BPDU.TopologyChangeAck || !acts[0].BPDU.TopologyChange {
		t.Errorf("next hello: %+v", acts)
	}
}

// TestVirtualRootConfig: timers out of 802.1D's ranges and port numbers
// out of range are refused.
func TestVirtualRootConfig(t *testing.T) {
	for _, cfg := range []VirtualRootConfig{
		{PortNo: 0},
		{PortNo: 1, HelloTime: 500 * time.Millisecond},
		{PortNo: 1, MaxAge: 40 * time.Second, ForwardDelay: 4 * time.Second},
	} {
		if _, err := NewVirtualRoot(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	v, err := NewVirtualRoot(VirtualRootConfig{PortNo: 1, Root: regionRoot})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.SetTimers(time.Second, 3*time.Second, 4*time.Second, labEpoch); err == nil {
		t.Error("max age under 2 x (hello + 1 s) accepted")
	}
}
