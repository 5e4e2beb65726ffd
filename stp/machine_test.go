package stp

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// Tests that drive one Bridge by hand: BPDUs from imaginary neighbours,
// time stepped exactly.

var (
	macR = [6]byte{2, 0, 0, 0, 0, 0xaa} // a neighbour that is root
	idR  = NewBridgeID(0x1000, macR)    // better than any default bridge
	idX  = NewBridgeID(0xF000, macR)    // worse than any default bridge
)

// rig is a bridge with address 02:00:00:00:00:01 and ports 1..n enabled at
// labEpoch.
type rig struct {
	t testing.TB
	b *Bridge
}

func newRig(t testing.TB, ports int) *rig {
	t.Helper()
	b, err := New(DefaultConfig(mac1), labEpoch)
	if err != nil {
		t.Fatal(err)
	}
	for no := PortNo(1); no <= PortNo(ports); no++ {
		mustAdd(t, b, no, DefaultPortConfig(), labEpoch)
		b.Enable(no, labEpoch)
	}
	return &rig{t, b}
}

func at(d time.Duration) time.Time { return labEpoch.Add(d) }

// config is a config BPDU from bridge id's port 0x8001 announcing root.
func config(root BridgeID, cost uint32, id BridgeID, age time.Duration) BPDU {
	return BPDU{
		Type: TypeConfig, RootID: root, RootPathCost: cost, BridgeID: id, PortID: 0x8001,
		MessageAge: age, MaxAge: DefaultMaxAge, HelloTime: DefaultHelloTime, ForwardDelay: DefaultForwardDelay,
	}
}

func only(acts []Action, kind ActionKind) []Action {
	var out []Action
	for _, a := range acts {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

func (r *rig) port(no PortNo) PortStatus {
	r.t.Helper()
	p, ok := statusPort(r.b, no)
	if !ok {
		r.t.Fatalf("no port %d", no)
	}
	return p
}

// TestHoldTimer: at most one config BPDU per hold time on a port; a reply
// asked for meanwhile is deferred to the end of the hold time, not dropped.
func TestHoldTimer(t *testing.T) {
	r := newRig(t, 1)
	inferior := config(idX, 0, idX, 0)
	steps := []struct {
		at    time.Duration
		recv  bool
		sends int
	}{
		{at: 0, recv: true, sends: 1}, // reply at once
		{at: 100 * time.Millisecond, recv: true, sends: 0},
		{at: 500 * time.Millisecond, recv: true, sends: 0},
		{at: 999 * time.Millisecond, sends: 0},
		{at: time.Second, sends: 1}, // the deferred reply
		{at: 1500 * time.Millisecond, recv: true, sends: 0},
		{at: 2 * time.Second, sends: 1}, // hold expiry and hello coincide: one BPDU
		{at: 2500 * time.Millisecond, sends: 0},
		{at: 4 * time.Second, sends: 1}, // hello
	}
	for _, s := range steps {
		var acts []Action
		if s.recv {
			acts = r.b.Receive(1, inferior, at(s.at))
		} else {
			acts = r.b.Tick(at(s.at))
		}
		if got := len(only(acts, SendBPDU)); got != s.sends {
			t.Errorf("at %v: %d BPDUs sent, want %d (%v)", s.at, got, s.sends, acts)
		}
	}
	if p := r.port(1); p.Counters.ConfigOut != 4 || p.Counters.ConfigIn != 4 {
		t.Errorf("counters %+v", p.Counters)
	}
}

// TestMessageAge: information is taken only while younger than max age, and
// ages out max age - message age after it was received.
func TestMessageAge(t *testing.T) {
	t.Run("aged on arrival", func(t *testing.T) {
		r := newRig(t, 1)
		for _, age := range []time.Duration{DefaultMaxAge, DefaultMaxAge + time.Second} {
			r.b.Receive(1, config(idR, 0, idR, age), labEpoch)
			if st := r.b.Status(); !st.IsRoot() {
				t.Errorf("message age %v taken", age)
			}
		}
		if p := r.port(1); p.Counters.Discarded != 2 || p.Counters.ConfigIn != 0 {
			t.Errorf("counters %+v", p.Counters)
		}
		r.b.Receive(1, config(idR, 0, idR, DefaultMaxAge-timeUnit), labEpoch)
		if st := r.b.Status(); st.RootID != idR {
			t.Errorf("message age just under max age refused")
		}
	})
	t.Run("ages out", func(t *testing.T) {
		r := newRig(t, 1)
		age := 5 * time.Second
		r.b.Receive(1, config(idR, 0, idR, age), labEpoch)
		if st := r.b.Status(); st.RootID != idR || st.RootPort != 1 {
			t.Fatalf("root %v port %d", st.RootID, st.RootPort)
		}
		expiry := DefaultMaxAge - age
		r.b.Tick(at(expiry - time.Millisecond))
		if st := r.b.Status(); st.RootPort != 1 {
			t.Fatalf("information aged out early")
		}
		acts := r.b.Tick(at(expiry))
		st := r.b.Status()
		if !st.IsRoot() || r.port(1).Role != RoleDesignated {
			t.Fatalf("after %v: root %v, port 1 %v", expiry, st.RootID, r.port(1).Role)
		}
		// Root again: it announces itself and a topology change.
		sent := only(acts, SendBPDU)
		if len(sent) != 1 || sent[0].BPDU.RootID != st.BridgeID || !sent[0].BPDU.TopologyChange {
			t.Errorf("sent %v", sent)
		}
	})
}

// TestRelay: a non-root bridge relays the root's information on its
// designated ports, with the message age grown by the time it spent here and
// MessageAgeIncrement, and adopts the root's timers.
func TestRelay(t *testing.T) {
	r := newRig(t, 2)
	m := config(idR, 10, idR, time.Second)
	m.MaxAge, m.HelloTime, m.ForwardDelay = 12*time.Second, time.Second, 5*time.Second
	acts := r.b.Receive(1, m, at(0))
	sent := only(acts, SendBPDU)
	if len(sent) != 1 || sent[0].Port != 2 {
		t.Fatalf("sent %v", sent)
	}
	got := sent[0].BPDU
	want := BPDU{
		Type: TypeConfig, RootID: idR, RootPathCost: 10 + DefaultPathCost, BridgeID: r.b.Status().BridgeID,
		PortID: NewPortID(DefaultPortPriority, 2), MessageAge: 2 * time.Second,
		MaxAge: 12 * time.Second, HelloTime: time.Second, ForwardDelay: 5 * time.Second,
	}
	if got != want {
		t.Errorf("relayed\n %+v\nwant\n %+v", got, want)
	}
	// A refresh within the hold time is relayed at its end, older by the
	// time it waited.
	if acts := r.b.Receive(1, m, at(500*time.Millisecond)); len(only(acts, SendBPDU)) != 0 {
		t.Errorf("relayed within the hold time: %v", acts)
	}
	sent = only(r.b.Tick(at(time.Second)), SendBPDU)
	if len(sent) != 1 || sent[0].BPDU.MessageAge != 2500*time.Millisecond {
		t.Errorf("deferred relay %v", sent)
	}
	// The learned forward delay paces a port enabled now.
	st := r.b.Status()
	if st.MaxAge != 12*time.Second || st.HelloTime != time.Second || st.ForwardDelay != 5*time.Second {
		t.Errorf("timers in use %v %v %v", st.MaxAge, st.HelloTime, st.ForwardDelay)
	}
	mustAdd(t, r.b, 3, DefaultPortConfig(), at(time.Second))
	r.b.Enable(3, at(time.Second))
	for d := time.Second; d < 11*time.Second; d += 100 * time.Millisecond {
		if d%time.Second == 0 {
			r.b.Receive(1, m, at(d))
		}
		r.b.Tick(at(d))
	}
	if p := r.port(3); p.State != Learning {
		t.Errorf("port 3 %v after one learned forward delay", p.State)
	}
	r.b.Tick(at(11 * time.Second))
	if p := r.port(3); p.State != Forwarding {
		t.Errorf("port 3 %v after two learned forward delays", p.State)
	}
}

// TestTCNRepeated: a TCN goes out every hello time until acknowledged.
func TestTCNRepeated(t *testing.T) {
	r := newRig(t, 1)
	hello := config(idR, 0, idR, 0)
	var tcns []time.Duration
	collect := func(d time.Duration, acts []Action) {
		for _, a := range only(acts, SendBPDU) {
			if a.BPDU.Type == TypeTCN && a.Port == 1 {
				tcns = append(tcns, d)
			}
		}
	}
	r.b.Receive(1, hello, at(0))
	mustAdd(t, r.b, 2, DefaultPortConfig(), at(0))
	r.b.Enable(2, at(0))
	for d := time.Duration(0); d <= 40*time.Second; d += 100 * time.Millisecond {
		if d%DefaultHelloTime == 0 {
			collect(d, r.b.Receive(1, hello, at(d)))
		}
		collect(d, r.b.Tick(at(d)))
		if d == 35*time.Second {
			ack := hello
			ack.TopologyChangeAck = true
			collect(d, r.b.Receive(1, ack, at(d)))
		}
	}
	want := []time.Duration{30 * time.Second, 32 * time.Second, 34 * time.Second}
	if len(tcns) != len(want) || tcns[0] != want[0] || tcns[1] != want[1] || tcns[2] != want[2] {
		t.Errorf("TCNs at %v, want %v", tcns, want)
	}
	if st := r.b.Status(); st.TopologyChangeDetected {
		t.Error("still notifying after the acknowledgment")
	}
}

// TestTickSchedules: the outcome does not depend on how often Tick is called,
// as long as it is at least every second.
func TestTickSchedules(t *testing.T) {
	type result struct {
		forwardingAt time.Duration
		hellos       int
	}
	run := func(next func(now time.Duration, b *Bridge) time.Duration) result {
		r := newRig(t, 1)
		var res result
		for now := time.Duration(0); now <= time.Minute; now = next(now, r.b) {
			for _, a := range r.b.Tick(at(now)) {
				if a.Kind == SendBPDU {
					res.hellos++
				}
				if a.Kind == SetState && a.State == Forwarding {
					res.forwardingAt = now
				}
			}
		}
		return res
	}
	every := func(step time.Duration) func(time.Duration, *Bridge) time.Duration {
		return func(now time.Duration, _ *Bridge) time.Duration { return now + step }
	}
	exact := func(_ time.Duration, b *Bridge) time.Duration {
		next, ok := b.NextTimer()
		if !ok {
			t.Fatal("no timer running")
		}
		return next.Sub(labEpoch)
	}
	want := result{forwardingAt: 2 * DefaultForwardDelay, hellos: 30}
	for _, tt := range []struct {
		name string
		next func(time.Duration, *Bridge) time.Duration
		want result
	}{
		{"10ms", every(10 * time.Millisecond), want},
		{"1s", every(time.Second), want},
		{"700ms", every(700 * time.Millisecond), result{forwardingAt: 30100 * time.Millisecond, hellos: 29}}, // last tick 59.5s
		{"NextTimer", exact, want},
	} {
		if got := run(tt.next); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestStall: a Tick after an hour's stall fires the overdue timers once, as
// if a second late, instead of replaying the hour.
func TestStall(t *testing.T) {
	r := newRig(t, 1)
	acts := r.b.Tick(at(time.Hour))
	if n := len(only(acts, SendBPDU)); n != 1 {
		t.Errorf("%d BPDUs after the stall, want 1", n)
	}
	if p := r.port(1); p.State != Learning {
		t.Errorf("port %v, want learning (the stall does not count as listening)", p.State)
	}
	next, _ := r.b.NextTimer()
	if next.Before(at(time.Hour)) {
		t.Errorf("next timer %v before now", next.Sub(labEpoch))
	}
}

func TestReceiveOddities(t *testing.T) {
	r := newRig(t, 1)
	mustAdd(t, r.b, 2, DefaultPortConfig(), labEpoch) // stays disabled
	self := config(r.b.Status().BridgeID, 0, r.b.Status().BridgeID, 0)
	self.PortID = NewPortID(DefaultPortPriority, 1)
	for _, tt := range []struct {
		name string
		port PortNo
		m    BPDU
	}{
		{"unknown type", 1, BPDU{Type: 0x42, MaxAge: time.Second}},
		{"own BPDU looped back", 1, self},
		{"on a disabled port", 2, config(idR, 0, idR, 0)},
		{"tcn on a disabled port", 2, BPDU{Type: TypeTCN}},
	} {
		before := r.port(tt.port).Counters.Discarded
		if acts := r.b.Receive(tt.port, tt.m, labEpoch); len(acts) != 0 {
			t.Errorf("%s: actions %v", tt.name, acts)
		}
		if got := r.port(tt.port).Counters.Discarded; got != before+1 {
			t.Errorf("%s: discarded %d", tt.name, got)
		}
	}
	if acts := r.b.Receive(9, config(idR, 0, idR, 0), labEpoch); acts != nil {
		t.Errorf("unknown port: %v", acts)
	}
	if st := r.b.Status(); !st.IsRoot() {
		t.Error("oddities changed the root")
	}
	// An RST BPDU is a config BPDU to an 802.1D bridge.
	rst := config(idR, 0, idR, 0)
	rst.Type, rst.Version = TypeRST, 2
	r.b.Receive(1, rst, labEpoch)
	if st := r.b.Status(); st.RootID != idR {
		t.Error("RST BPDU ignored")
	}
}

// TestTCNOnlyOnDesignatedPorts: a TCN counts only where this bridge is the
// designated bridge.
func TestTCNOnlyOnDesignatedPorts(t *testing.T) {
	r := newRig(t, 2)
	r.b.Receive(1, config(idR, 0, idR, 0), at(0)) // port 1: root port
	if acts := r.b.Receive(1, BPDU{Type: TypeTCN}, at(time.Second)); len(acts) != 0 {
		t.Errorf("TCN on the root port: %v", acts)
	}
	acts := r.b.Receive(2, BPDU{Type: TypeTCN}, at(2*time.Second))
	var up, ack bool
	for _, a := range only(acts, SendBPDU) {
		up = up || (a.Port == 1 && a.BPDU.Type == TypeTCN)
		ack = ack || (a.Port == 2 && a.BPDU.TopologyChangeAck)
	}
	if !up || !ack {
		t.Errorf("TCN on a designated port: %v", acts)
	}
}

func TestRemovePort(t *testing.T) {
	r := newRig(t, 2)
	r.b.Receive(1, config(idR, 0, idR, 0), at(0))
	for d := time.Duration(0); d <= 31*time.Second; d += time.Second {
		r.b.Receive(1, config(idR, 0, idR, 0), at(d))
		r.b.Tick(at(d))
	}
	if p := r.port(1); p.State != Forwarding || p.Role != RoleRoot {
		t.Fatalf("port 1 %v %v", p.State, p.Role)
	}
	acts, err := r.b.RemovePort(1, at(32*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(acts, Action{Kind: SetState, Port: 1, State: Disabled})
	if i < 0 || i+1 == len(acts) || acts[i+1] != (Action{Kind: FlushFDB, Port: 1}) {
		t.Errorf("remove: %v", acts)
	}
	st := r.b.Status()
	if _, ok := st.Port(1); ok || !st.IsRoot() || len(st.Ports) != 1 {
		t.Errorf("after remove: root %v ports %+v", st.RootID, st.Ports)
	}
	if _, err := r.b.RemovePort(1, at(33*time.Second)); !errors.Is(err, ErrNoSuchPort) {
		t.Errorf("second remove: %v", err)
	}
	if acts := r.b.Enable(1, at(33*time.Second)); len(only(acts, SetState)) != 0 {
		t.Errorf("enable removed port: %v", acts)
	}
	if acts := r.b.Disable(2, at(33*time.Second)); len(only(acts, SetState)) != 1 {
		t.Errorf("disable: %v", acts)
	}
	if acts := r.b.Disable(2, at(33*time.Second)); acts != nil {
		t.Errorf("second disable: %v", acts)
	}
}

// TestRootGuardResumes: superior information that comes back after the
// port recovered blocks it again.
func TestRootGuardResumes(t *testing.T) {
	b, err := New(DefaultConfig(mac1), labEpoch)
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, b, 1, PortConfig{Priority: DefaultPortPriority, RootGuard: true}, labEpoch)
	b.Enable(1, labEpoch)
	vm := config(idR, 0, idR, 0)
	b.Receive(1, vm, at(0))
	if p, _ := statusPort(b, 1); !p.RootInconsistent || p.State != Blocking {
		t.Fatalf("port %+v", p)
	}
	for d := time.Duration(0); d <= 60*time.Second; d += time.Second {
		b.Tick(at(d))
	}
	if p, _ := statusPort(b, 1); p.RootInconsistent || p.State != Forwarding {
		t.Fatalf("not recovered: %+v", p)
	}
	acts := b.Receive(1, vm, at(61*time.Second))
	p, _ := statusPort(b, 1)
	if !p.RootInconsistent || p.State != Blocking || len(only(acts, FlushFDB)) != 1 {
		t.Errorf("superior BPDU after recovery: %+v, %v", p, acts)
	}
	if st := b.Status(); !st.IsRoot() {
		t.Error("the VM became root")
	}
}

func TestAdminPriorities(t *testing.T) {
	t.Run("bridge priority elects a new root and back", func(t *testing.T) {
		l := triangle.build(t)
		l.converge(boundStart, 10*time.Second)
		l.apply(2, l.nodes[2].br.SetBridgePriority(0x1000, l.now))
		l.drain()
		took := l.converge(boundStart, 10*time.Second)
		if got := l.nodes[0].br.Status().RootID; got != l.nodes[2].br.Status().BridgeID {
			t.Errorf("root %v", got)
		}
		// Back to a worse priority: the others' information about the old
		// root has to age out.
		l.apply(2, l.nodes[2].br.SetBridgePriority(0x9000, l.now))
		l.drain()
		took2 := l.converge(boundFailure, 10*time.Second)
		if got := l.nodes[2].br.Status().RootID; got != l.nodes[0].br.Status().BridgeID {
			t.Errorf("root %v", got)
		}
		t.Logf("new root in %v, old root back in %v", took, took2)
	})
	t.Run("port priority moves the root port", func(t *testing.T) {
		l := topology{prios: []uint16{prio, prio}, links: []topoLink{{a: 0, b: 1}, {a: 0, b: 1}}}.build(t)
		l.converge(boundStart, 10*time.Second)
		if got := l.blockedPorts(); len(got) != 1 || got[0] != "1:2" {
			t.Fatalf("blocked %v", got)
		}
		acts, err := l.nodes[0].br.SetPortPriority(l.portOn(0, 1), 0x40, l.now)
		if err != nil {
			t.Fatal(err)
		}
		l.apply(0, acts)
		l.drain()
		l.run(DefaultHelloTime) // the new port ID goes out with the next hello
		l.converge(boundStart, 10*time.Second)
		if got := l.blockedPorts(); len(got) != 1 || got[0] != "1:1" {
			t.Errorf("blocked %v, want [1:1]", got)
		}
		if p, _ := statusPort(l.nodes[0].br, 2); p.ID != 0x4002 {
			t.Errorf("port ID %v", p.ID)
		}
	})
	t.Run("root guard switched on", func(t *testing.T) {
		l := newLab(t, prio, 0x1000)
		link := l.connect(0, 1, 100)
		l.converge(boundStart, 10*time.Second)
		acts, err := l.nodes[0].br.SetRootGuard(l.portOn(0, link), true, l.now)
		if err != nil {
			t.Fatal(err)
		}
		l.apply(0, acts)
		if p, _ := statusPort(l.nodes[0].br, 1); !p.RootInconsistent || p.State != Blocking {
			t.Errorf("port %+v", p)
		}
		if !l.nodes[0].br.Status().IsRoot() {
			t.Error("guarded bridge still follows the other")
		}
	})
}

// TestLearnedTimersClamped: a root announcing timers outside the 802.1D
// ranges is followed within them.
func TestLearnedTimersClamped(t *testing.T) {
	for _, tt := range []struct {
		name                       string
		hello, maxAge, fwd         time.Duration
		wantHello, wantMax, wantFd time.Duration
	}{
		{"zeros", 0, timeUnit, 0, MinHelloTime, MinMaxAge, MinForwardDelay},
		{"huge", 200 * time.Second, 200 * time.Second, 200 * time.Second, MaxHelloTime, MaxMaxAge, MaxForwardDelay},
		{"in range", 3 * time.Second, 30 * time.Second, 20 * time.Second, 3 * time.Second, 30 * time.Second, 20 * time.Second},
	} {
		r := newRig(t, 1)
		m := config(idR, 0, idR, 0)
		m.HelloTime, m.MaxAge, m.ForwardDelay = tt.hello, tt.maxAge, tt.fwd
		r.b.Receive(1, m, labEpoch)
		st := r.b.Status()
		if st.RootID != idR || st.HelloTime != tt.wantHello || st.MaxAge != tt.wantMax || st.ForwardDelay != tt.wantFd {
			t.Errorf("%s: root %v timers %v %v %v", tt.name, st.RootID, st.HelloTime, st.MaxAge, st.ForwardDelay)
		}
	}
}
