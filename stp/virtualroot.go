package stp

import (
	"fmt"
	"time"
)

// VirtualRoot is one edge port of a region of bridges that shows itself to
// the 802.1D bridges outside as a single root bridge, as an MSTP region
// shows itself as one bridge: l2wg's shortest-path mesh runs no spanning
// tree inside, and each node's TAP is one such port. Every edge port of the
// region announces the same bridge, the region's root, as root and as
// designated bridge, at root path cost 0, each with a port ID of its own:
// an outside bridge that reaches the region through two edge ports (a LAN
// that joins two sites behind their TAPs) sees two ports of one root and
// blocks one of its own ports, the 802.1D way.
//
// The port is the designated port of its segment and forwards, after
// Listening and Learning (a forward delay each) when it is enabled and
// whenever it stops blocking, unless it hears better information:
//   - Root guard: a config BPDU that names a better root than the region's,
//     or the region's root at a better priority vector than its own edge
//     port can offer (another bridge claiming to be the designated bridge
//     of a root it is not). The region must stay the root of the outside
//     tree (it cannot carry an outside root's tree through its inside), so
//     the port blocks, root-inconsistent, until that information ages out
//     (max age less its message age) or the region's root becomes at least
//     as good. Frames keep being announced, so the outside bridge keeps
//     replying.
//   - Backup: a config BPDU of the region's own root at cost 0 from a port
//     with a lower port ID: another edge port of the region on the same
//     segment (two nodes' TAPs on one LAN that runs no STP). The port
//     blocks and stays silent while that port is heard, as an 802.1D
//     bridge's second port on a segment does.
//
// The information held is replaced by any later BPDU from the same bridge
// (address) and port (802.1D-2004's rule), so a neighbour that stops
// claiming a better root, or lowers its priority, unblocks the port at once
// rather than after max age.
//
// As the root, the port acknowledges topology change notifications and
// sets the topology change flag in its BPDUs for max age + forward delay
// after a TCN or after it starts forwarding itself, with SetAgeing and
// RestoreAgeing for the caller's forwarding database. Topology changes of
// other edge ports are not carried across the region: each edge port
// speaks for its own segment only.
//
// BPDUs sent are 802.1D config BPDUs (version 0, what a Linux bridge
// accepts), at most one per HoldTime, every hello time and in reply to
// worse information. RST BPDUs received are read as config BPDUs.
//
// Like Bridge, VirtualRoot is pure: no goroutine, no clock; every call
// takes the time and returns the actions to carry out in order (SendBPDU,
// SetState, FlushFDB, SetAgeing, RestoreAgeing), all for its one port.
type VirtualRoot struct {
	no     PortNo
	id     PortID
	root   BridgeID
	timers timers

	state   PortState
	stateAt time.Time // when Listening or Learning ends

	// info is the better information heard, while held.
	info    *BPDU
	infoEnd time.Time
	backup  bool // info is another edge port of the region (else root guard)

	tcEnd   time.Time // the TC flag is set in BPDUs until then; zero: none
	tcAck   bool      // the next BPDU acknowledges a TCN
	pending bool      // a BPDU is due once the hold time has passed
	sent    time.Time // when the last BPDU went out; zero: none yet
	hello   time.Time // when the next periodic BPDU is due

	stats VirtualRootStats
	out   []Action
}

// VirtualRootConfig configures a VirtualRoot. Zero timers take the
// defaults, in the ranges of Config.
type VirtualRootConfig struct {
	Root   BridgeID // the region's root bridge: the same on every edge port
	Port   PortID   // this edge port's ID: different on every edge port
	PortNo PortNo   // the port the actions name (1 to MaxPortNo)

	HelloTime, MaxAge, ForwardDelay time.Duration
}

// VirtualRootStats are the port's counters.
type VirtualRootStats struct {
	PortCounters
	RootGuardBlocks uint64 // times root guard blocked the port
	BackupBlocks    uint64 // times another edge port of the region on the segment blocked it
	TopologyChanges uint64 // topology changes started (a TCN, or the port forwarding)
}

// NewVirtualRoot returns the port, Disabled until Enable.
func NewVirtualRoot(cfg VirtualRootConfig) (*VirtualRoot, error) {
	if err := validatePortNo(cfg.PortNo); err != nil {
		return nil, err
	}
	t := timers{cfg.HelloTime, cfg.MaxAge, cfg.ForwardDelay}.withDefaults()
	if err := t.validate(); err != nil {
		return nil, err
	}
	return &VirtualRoot{no: cfg.PortNo, id: cfg.Port, root: cfg.Root, timers: t, state: Disabled}, nil
}

// Enable brings the port up: it listens and learns for a forward delay
// each, and announces the root at once.
func (v *VirtualRoot) Enable(now time.Time) []Action {
	v.out = v.out[:0]
	if v.state == Disabled {
		v.info = nil
		v.listen(now)
		v.send(now)
	}
	return v.out
}

// Disable takes the port down: it forwards and sends nothing.
func (v *VirtualRoot) Disable(now time.Time) []Action {
	v.out = v.out[:0]
	if v.state != Disabled {
		v.info = nil
		v.setState(Disabled)
		v.pending = false
	}
	return v.out
}

// SetRoot changes the region's root (the root bridge's priority or
// address). Better information held is looked at again, and the port
// announces the new root at once.
func (v *VirtualRoot) SetRoot(root BridgeID, now time.Time) []Action {
	v.out = v.out[:0]
	if root == v.root {
		return v.out
	}
	v.root = root
	if v.state == Disabled {
		return v.out
	}
	v.tick(now)
	if v.info != nil && !v.better(v.info) {
		v.release(now)
	}
	v.send(now)
	return v.out
}

// SetTimers changes the timers the port announces, in the ranges of
// Config; a refused change changes nothing.
func (v *VirtualRoot) SetTimers(hello, maxAge, forwardDelay time.Duration, now time.Time) ([]Action, error) {
	t := timers{hello, maxAge, forwardDelay}.withDefaults()
	if err := t.validate(); err != nil {
		return nil, err
	}
	v.out = v.out[:0]
	v.timers = t
	if v.state != Disabled {
		v.hello = now
		v.tick(now)
	}
	return v.out, nil
}

// Receive takes a BPDU heard on the port.
func (v *VirtualRoot) Receive(m BPDU, now time.Time) []Action {
	v.out = v.out[:0]
	if m.Type == TypeTCN {
		v.stats.TCNIn++
	} else {
		v.stats.ConfigIn++
	}
	if v.state == Disabled {
		v.stats.Discarded++
		return v.out
	}
	v.tick(now)
	if m.Type == TypeTCN {
		// As the root: acknowledge, and tell the segment's bridges to age
		// their addresses fast.
		v.tcAck = true
		v.startTC(now)
		v.send(now)
		return v.out
	}
	if m.Type != TypeConfig && m.Type != TypeRST {
		v.stats.Discarded++
		return v.out
	}
	if m.MessageAge >= v.timers.maxAge {
		v.stats.Discarded++ // aged on its way
		return v.out
	}
	m.Type = TypeConfig
	if m.RootID == v.root && m.RootPathCost == 0 && m.BridgeID == v.root && m.PortID == v.id {
		v.stats.Discarded++ // our own, looped back (or a port ID of the region used twice)
		return v.out
	}
	if v.better(&m) {
		v.hold(&m, now)
		return v.out
	}
	if v.info != nil && v.info.BridgeID.MAC() == m.BridgeID.MAC() && v.info.PortID == m.PortID {
		// The bridge whose better information blocked the port now says
		// less (at another priority, too: the same address is the same
		// bridge): take it at once.
		v.release(now)
	}
	v.send(now) // worse information: reply as the designated port
	return v.out
}

// Tick fires the timers due at now.
func (v *VirtualRoot) Tick(now time.Time) []Action {
	v.out = v.out[:0]
	v.tick(now)
	return v.out
}

// State is the port's state.
func (v *VirtualRoot) State() PortState { return v.state }

// Root is the region's root in use.
func (v *VirtualRoot) Root() BridgeID { return v.root }

// RootInconsistent reports whether root guard blocks the port.
func (v *VirtualRoot) RootInconsistent() bool { return v.info != nil && !v.backup }

// Backup reports whether the port blocks for another edge port of the
// region on its segment.
func (v *VirtualRoot) Backup() bool { return v.info != nil && v.backup }

// Stats returns the counters.
func (v *VirtualRoot) Stats() VirtualRootStats { return v.stats }

// Status is the port as a Bridge's Status reports a root bridge with one
// port: BridgeID and RootID are the region's root.
func (v *VirtualRoot) Status() Status {
	s := Status{
		Protocol: ProtocolSTP, BridgeID: v.root, RootID: v.root,
		HelloTime: v.timers.hello, MaxAge: v.timers.maxAge, ForwardDelay: v.timers.forwardDelay,
		BridgeHelloTime: v.timers.hello, BridgeMaxAge: v.timers.maxAge, BridgeForwardDelay: v.timers.forwardDelay,
		TopologyChange: !v.tcEnd.IsZero(), TopologyChanges: v.stats.TopologyChanges,
	}
	p := PortStatus{
		No: v.no, ID: v.id, State: v.state, Role: RoleDesignated, PathCost: 0, RootGuard: true,
		RootInconsistent: v.RootInconsistent(),
		DesignatedRoot:   v.root, DesignatedBridge: v.root, DesignatedPort: v.id,
		TopologyChangeAck: v.tcAck, ConfigPending: v.pending, Counters: v.stats.PortCounters, Protocol: ProtocolSTP,
	}
	switch {
	case v.state == Disabled:
		p.Role = RoleDisabled
	case v.info != nil:
		p.Role = RoleBlocked
		if v.backup {
			p.Role = RoleBackup
		}
		p.DesignatedRoot, p.DesignatedCost = v.info.RootID, v.info.RootPathCost
		p.DesignatedBridge, p.DesignatedPort = v.info.BridgeID, v.info.PortID
	}
	s.Ports = []PortStatus{p}
	return s
}

// better reports whether m's priority vector beats the port's own (root,
// 0, root, port).
func (v *VirtualRoot) better(m *BPDU) bool {
	switch {
	case m.RootID != v.root:
		return m.RootID < v.root
	case m.RootPathCost != 0:
		return false
	case m.BridgeID != v.root:
		return m.BridgeID < v.root
	}
	return m.PortID < v.id
}

// hold keeps better information m and blocks the port while it lasts.
func (v *VirtualRoot) hold(m *BPDU, now time.Time) {
	backup := m.RootID == v.root && m.BridgeID == v.root
	if v.info == nil || v.backup != backup {
		if backup {
			v.stats.BackupBlocks++
		} else {
			v.stats.RootGuardBlocks++
		}
	}
	info := *m
	v.info, v.backup = &info, backup
	v.infoEnd = now.Add(v.timers.maxAge - m.MessageAge)
	if v.state != Blocking {
		v.setState(Blocking)
	}
	if backup {
		v.pending = false
	}
}

// release forgets the better information: the port listens again.
func (v *VirtualRoot) release(now time.Time) {
	v.info = nil
	v.listen(now)
	v.send(now)
}

func (v *VirtualRoot) listen(now time.Time) {
	v.setState(Listening)
	v.stateAt = now.Add(v.timers.forwardDelay)
}

// setState moves the port, flushing its addresses when it stops learning.
func (v *VirtualRoot) setState(s PortState) {
	was := v.state
	v.state = s
	v.out = append(v.out, Action{Kind: SetState, Port: v.no, State: s})
	if was.Learns() && !s.Learns() {
		v.out = append(v.out, Action{Kind: FlushFDB, Port: v.no})
	}
}

// startTC sets the TC flag for max age + forward delay (802.1D-1998
// 8.5.3.13, the root's topology change time).
func (v *VirtualRoot) startTC(now time.Time) {
	if v.tcEnd.IsZero() {
		v.stats.TopologyChanges++
		v.out = append(v.out, Action{Kind: SetAgeing, Ageing: v.timers.forwardDelay})
	}
	v.tcEnd = now.Add(v.timers.maxAge + v.timers.forwardDelay)
}

// send transmits the port's BPDU now, or once the hold time has passed.
// A backup port sends nothing.
func (v *VirtualRoot) send(now time.Time) {
	if v.state == Disabled || v.Backup() {
		return
	}
	if !v.sent.IsZero() && now.Sub(v.sent) < HoldTime {
		v.pending = true
		return
	}
	v.pending = false
	v.sent = now
	v.hello = now.Add(v.timers.hello)
	v.out = append(v.out, Action{Kind: SendBPDU, Port: v.no, BPDU: v.bpdu()})
	v.stats.ConfigOut++
	v.tcAck = false
}

func (v *VirtualRoot) bpdu() BPDU {
	return BPDU{
		Type: TypeConfig, TopologyChange: !v.tcEnd.IsZero(), TopologyChangeAck: v.tcAck,
		RootID: v.root, BridgeID: v.root, PortID: v.id,
		MaxAge: roundTime(v.timers.maxAge), HelloTime: roundTime(v.timers.hello), ForwardDelay: roundTime(v.timers.forwardDelay),
	}
}

// roundTime is d as a BPDU carries it (1/256 s).
func roundTime(d time.Duration) time.Duration {
	return (d + timeUnit/2) / timeUnit * timeUnit
}

func (v *VirtualRoot) tick(now time.Time) {
	if v.state == Disabled {
		return
	}
	if v.info != nil && !now.Before(v.infoEnd) {
		v.release(now)
	}
	for (v.state == Listening || v.state == Learning) && !now.Before(v.stateAt) {
		if v.state == Listening {
			v.setState(Learning)
			v.stateAt = v.stateAt.Add(v.timers.forwardDelay)
			continue
		}
		v.setState(Forwarding)
		v.startTC(now) // a port that starts forwarding is a topology change
	}
	if !v.tcEnd.IsZero() && !now.Before(v.tcEnd) {
		v.tcEnd = time.Time{}
		v.out = append(v.out, Action{Kind: RestoreAgeing})
	}
	if v.pending && now.Sub(v.sent) >= HoldTime || !v.Backup() && !now.Before(v.hello) {
		v.send(now)
	}
}

// String is the port in one line, for logs and tests.
func (v *VirtualRoot) String() string {
	s := fmt.Sprintf("virtual root %v port %v %v", v.root, v.id, v.state)
	if v.info != nil {
		s += fmt.Sprintf(" (heard root %v bridge %v port %v)", v.info.RootID, v.info.BridgeID, v.info.PortID)
	}
	return s
}
