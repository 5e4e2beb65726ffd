package stp

import "time"

// RSTP (802.1D-2004 clause 17) on the same Bridge: the entry points of
// bridge.go, port.go and admin.go hand over to the functions here when the
// bridge runs ProtocolRSTP. The clause's state machines are kept as they are
// written, one function per machine, each doing at most one transition per
// call: rstp_info.go (Port Information, Port Role Selection), rstp_roles.go
// (Port Role Transitions, Port State Transition), rstp_tc.go (Topology
// Change), rstp_tx.go (Port Transmit, Port Protocol Migration, Bridge
// Detection). rstpRun steps them all until none moves, so an event's whole
// consequence, handshakes included, is in the actions it returns.

// rstpPort holds a port's RSTP variables (17.19), named as in the clause.
type rstpPort struct {
	adminEdge bool // PortConfig.Edge
	p2p       bool // PortConfig.PointToPoint: operPointToPointMAC

	// The machines' states.
	pim    pimState
	prt    prtState
	pst    pstState
	tcm    tcmState
	ppm    ppmState
	ptx    ptxState
	bdmOn  bool // Bridge Detection: in EDGE
	infoIs infoIs

	role, selectedRole Role

	portPriority, msgPriority, designatedPriority vector
	portTimes, msgTimes, designatedTimes          rtimes
	rx                                            BPDU // the BPDU being received

	agree, agreed, disputed, fdbFlush      bool
	forward, forwarding, learn, learning   bool
	mcheck, newInfo, operEdge, portEnabled bool
	proposed, proposing                    bool
	rcvdMsg, rcvdRSTP, rcvdSTP             bool
	rcvdTc, rcvdTcAck, rcvdTcn             bool
	reRoot, reselect, selected, sendRSTP   bool
	sync, synced, tcAck, tcProp, updtInfo  bool
	dirty                                  bool // addresses may have been learned since the last flush
	txCount                                int
	edgeDelayWhile, fdWhile, helloWhen     time.Duration
	mdelayWhile, rbWhile, rcvdInfoWhile    time.Duration
	rrWhile, tcWhile                       time.Duration
}

// rstpStart is New's RSTP half: Port Role Selection starts (INIT_BRIDGE)
// and the port timers tick every second.
func (b *Bridge) rstpStart() {
	b.rootTimes = rtimes{maxAge: b.timers.maxAge, hello: b.timers.hello, forwardDelay: b.timers.forwardDelay}
	b.rtick.start(b.now.Add(rstpTick))
}

// rstpAddPort puts a new port's machines in their BEGIN states.
func (b *Bridge) rstpAddPort(p *port, cfg PortConfig) {
	r := &p.r
	r.adminEdge, r.p2p = cfg.Edge, cfg.PointToPoint
	r.designatedTimes = b.rootTimes
	r.designatedTimes.hello = b.timers.hello
	r.designatedPriority = vector{b.designatedRoot, b.rootPathCost, b.id, p.id}
	b.pimDisabled(p)
	r.role, r.selectedRole = RoleDisabled, RoleDisabled
	r.synced = false
	r.sync, r.reRoot = true, true
	r.rrWhile = r.designatedTimes.forwardDelay
	r.fdWhile = r.designatedTimes.maxAge
	r.prt = prtDisablePort
	r.pst = pstDiscarding
	r.tcm = tcmInactive
	b.ppmCheckingRSTP(p)
	r.ptx = ptxInit
	r.newInfo = true
	r.bdmOn = r.adminEdge
	r.operEdge = r.adminEdge
	r.edgeDelayWhile = MigrateTime
	b.rstpReselectAll()
	b.rstpRun()
}

func (b *Bridge) rstpEnable(p *port) {
	p.r.portEnabled = true
	b.rstpSyncState(p)
	b.rstpRun()
}

// rstpDisable: the Port Receive machine's DISCARD (17.23) and the others
// through portEnabled.
func (b *Bridge) rstpDisable(p *port) {
	r := &p.r
	r.portEnabled = false
	r.rcvdMsg, r.rcvdRSTP, r.rcvdSTP = false, false, false
	r.edgeDelayWhile = MigrateTime
	b.rstpSyncState(p)
	b.rstpRun()
}

func (b *Bridge) rstpRemovePort(p *port) {
	if p.r.portEnabled {
		b.rstpDisable(p)
	}
	b.deletePort(p)
	b.rstpReselectAll()
	b.rstpRun()
}

// rstpReceive is the Port Receive machine's RECEIVE (17.23): the BPDU is
// handed to the Port Information machine (rcvdMsg), the Port Protocol
// Migration machine hears its version, and the port is no edge port.
// BPDUs are validated as in 802.1D-2004 9.3.4.
func (b *Bridge) rstpReceive(p *port, m *BPDU) {
	switch {
	case !p.r.portEnabled,
		m.Type == TypeRST && m.Version < 2,
		m.Type == TypeConfig && m.MessageAge >= m.MaxAge,
		m.Type != TypeTCN && m.BridgeID == b.id && m.PortID == p.id:
		p.counters.Discarded++
		return
	case m.Type == TypeTCN:
		p.counters.TCNIn++
	default:
		p.counters.ConfigIn++
	}
	r := &p.r
	r.rx = *m
	if m.Type == TypeRST {
		r.rcvdRSTP = true
	} else {
		r.rcvdSTP = true
	}
	r.operEdge = false
	r.rcvdMsg = true
	r.edgeDelayWhile = MigrateTime
	b.rstpRun()
}

// rstpTickExpired is the Port Timers machine (17.22): once a second every
// running timer counts down and the transmit budget refills by one.
func (b *Bridge) rstpTickExpired() {
	for _, p := range b.ports {
		r := &p.r
		for _, t := range []*time.Duration{&r.helloWhen, &r.tcWhile, &r.fdWhile, &r.rcvdInfoWhile,
			&r.rrWhile, &r.rbWhile, &r.mdelayWhile, &r.edgeDelayWhile} {
			*t = max(*t-rstpTick, 0)
		}
		if r.txCount > 0 {
			r.txCount--
		}
	}
	b.rtick.start(b.now.Add(rstpTick))
	b.rstpRun()
}

// rstpReselectAll asks for a new role selection, after a change of the
// bridge's or a port's parameters.
func (b *Bridge) rstpReselectAll() {
	for _, p := range b.ports {
		p.r.reselect = true
		p.r.selected = false
	}
}

// maxRuns bounds rstpRun: the machines settle in a few dozen steps; the
// bound only guards against a bug turning into a hang.
const maxRuns = 10_000

// rstpRun steps the machines until none moves, then lets the ports
// transmit; a transmission can move nothing else, so one more round ends it.
func (b *Bridge) rstpRun() {
	for range maxRuns {
		moved := false
		for _, p := range b.ports {
			moved = b.ppm(p) || moved
			moved = b.bdm(p) || moved
			moved = b.pim(p) || moved
		}
		moved = b.prs() || moved
		for _, p := range b.ports {
			moved = b.prt(p) || moved
			moved = b.pst(p) || moved
			moved = b.tcm(p) || moved
		}
		if moved {
			continue
		}
		for _, p := range b.ports {
			moved = b.ptx(p) || moved
		}
		if !moved {
			return
		}
	}
}

// rstpSyncState tells the switch the port's state when it changes: Disabled
// while the link is down, else what the Port State Transition machine says.
func (b *Bridge) rstpSyncState(p *port) {
	r := &p.r
	want := Discarding
	switch {
	case !r.portEnabled:
		want = Disabled
	case r.forwarding:
		want = Forwarding
	case r.learning:
		want = Learning
	}
	if want != p.state {
		p.state = want
		b.emit(Action{Kind: SetState, Port: p.no, State: want})
	}
}

// rstpFlush is the flush fdbFlush asks for (17.19.7), carried out at once:
// the switch forgets the port's addresses, if it can have learned any.
func (b *Bridge) rstpFlush(p *port) {
	r := &p.r
	r.fdbFlush = false
	if r.dirty {
		b.emit(Action{Kind: FlushFDB, Port: p.no})
		r.dirty = r.learning
	}
}

// rstpTopologyChange reports whether a port announces a topology change.
func (b *Bridge) rstpTopologyChange() bool {
	for _, p := range b.ports {
		if p.r.tcWhile != 0 {
			return true
		}
	}
	return false
}

// rstpPortStatus fills in what RSTP knows of a port.
func (b *Bridge) rstpPortStatus(p *port, s *PortStatus) {
	r := &p.r
	s.Role = r.role
	if !r.portEnabled {
		s.Role = RoleDisabled
	}
	s.DesignatedRoot = r.portPriority.root
	s.DesignatedCost = r.portPriority.cost
	s.DesignatedBridge = r.portPriority.bridge
	s.DesignatedPort = r.portPriority.port
	s.TopologyChangeAck = r.tcAck
	s.ConfigPending = r.newInfo && r.portEnabled
	s.Protocol = ProtocolRSTP
	if !r.sendRSTP {
		s.Protocol = ProtocolSTP
	}
	s.Edge, s.AdminEdge, s.PointToPoint = r.operEdge, r.adminEdge, r.p2p
}
