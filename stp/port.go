package stp

import (
	"fmt"
	"time"
)

// port is one bridge port's spanning-tree state (802.1D-1998 8.5.5).
type port struct {
	no        PortNo
	id        PortID
	pathCost  uint32
	rootGuard bool
	state     PortState

	// The best information heard or sent on the port's segment.
	designatedRoot   BridgeID
	designatedCost   uint32
	designatedBridge BridgeID
	designatedPort   PortID
	infoAge          time.Duration // message age of the information when recorded
	infoAt           time.Time     // when it was recorded

	tcAck            bool // acknowledge a TCN in the next config BPDU
	configPending    bool // a config BPDU waits for the hold timer
	rootInconsistent bool // root guard holds superior information back

	messageAgeTimer   timer
	forwardDelayTimer timer
	holdTimer         timer

	counters PortCounters

	r rstpPort // RSTP's state of the port
}

// PortCounters count a port's BPDUs. BPDUs that fail to decode never reach
// the Bridge: the caller counts those.
type PortCounters struct {
	ConfigIn, ConfigOut uint64 // config (and RST) BPDUs
	TCNIn, TCNOut       uint64
	Discarded           uint64 // received while disabled, aged, looped back or of an unknown type
}

// AddPort adds port no. The port starts Disabled, as a link that is down:
// call Enable when its link is up.
func (b *Bridge) AddPort(no PortNo, cfg PortConfig, now time.Time) ([]Action, error) {
	if err := validatePortNo(no); err != nil {
		return nil, err
	}
	if b.byNo[no] != nil {
		return nil, fmt.Errorf("stp: add port %d: %w", no, ErrPortExists)
	}
	if err := validatePortPriority(cfg.Priority); err != nil {
		return nil, err
	}
	cost, err := portCost(cfg.PathCost)
	if err != nil {
		return nil, err
	}
	b.begin(now)
	p := &port{no: no, id: NewPortID(cfg.Priority, no), pathCost: cost, rootGuard: cfg.RootGuard, state: Disabled}
	p.r.adminEdge, p.r.p2p = cfg.Edge, cfg.PointToPoint
	b.becomeDesignatedPort(p)
	b.insertPort(p)
	if b.proto == ProtocolRSTP {
		b.rstpAddPort(p, cfg)
	}
	return b.end(), nil
}

// RemovePort disables and removes port no. The actions include its last
// state change (to Disabled) and the flush of its addresses.
func (b *Bridge) RemovePort(no PortNo, now time.Time) ([]Action, error) {
	p := b.byNo[no]
	if p == nil {
		return nil, fmt.Errorf("stp: remove port %d: %w", no, ErrNoSuchPort)
	}
	b.begin(now)
	if b.proto == ProtocolRSTP {
		b.rstpRemovePort(p)
		return b.end(), nil
	}
	if p.state != Disabled {
		b.disablePort(p)
	}
	b.deletePort(p)
	return b.end(), nil
}

// Enable brings port no up (its link is up): the port starts as a
// designated port, Blocking then Listening (802.1D-1998 8.8.1); under RSTP
// it starts Discarding and proposes, or forwards at once if it is an edge
// port. Enabling an unknown or enabled port does nothing.
func (b *Bridge) Enable(no PortNo, now time.Time) []Action {
	b.begin(now)
	if p := b.byNo[no]; p != nil && b.proto == ProtocolRSTP {
		if !p.r.portEnabled {
			b.rstpEnable(p)
		}
	} else if p != nil && p.state == Disabled {
		b.initializePort(p)
		b.portStateSelection()
	}
	return b.end()
}

// Disable takes port no down (its link is down, 802.1D-1998 8.8.2): its
// information is forgotten, its addresses flushed, and the tree recomputed.
// Disabling an unknown or disabled port does nothing. Under RSTP an
// alternate port takes over from a root port that goes down at once.
func (b *Bridge) Disable(no PortNo, now time.Time) []Action {
	b.begin(now)
	if p := b.byNo[no]; p != nil && b.proto == ProtocolRSTP {
		if p.r.portEnabled {
			b.rstpDisable(p)
		}
	} else if p != nil && p.state != Disabled {
		b.disablePort(p)
	}
	return b.end()
}

// initializePort is 802.1D-1998 8.8.1's initialize_port.
func (b *Bridge) initializePort(p *port) {
	b.becomeDesignatedPort(p)
	b.setState(p, Blocking)
	p.tcAck = false
	p.configPending = false
	p.rootInconsistent = false
	p.messageAgeTimer.stop()
	p.forwardDelayTimer.stop()
	p.holdTimer.stop()
}

func (b *Bridge) disablePort(p *port) {
	wasRoot := b.isRootBridge()
	b.becomeDesignatedPort(p)
	b.setState(p, Disabled)
	p.tcAck = false
	p.configPending = false
	p.rootInconsistent = false
	p.messageAgeTimer.stop()
	p.forwardDelayTimer.stop()
	p.holdTimer.stop()
	b.configurationUpdate()
	b.portStateSelection()
	b.rootChanged(wasRoot)
}

// makeForwarding starts a blocked port on its way to Forwarding (8.6.11).
func (b *Bridge) makeForwarding(p *port) {
	if p.state == Blocking {
		b.setState(p, Listening)
		p.forwardDelayTimer.start(b.now.Add(b.current.forwardDelay))
	}
}

// makeBlocking blocks a port (8.6.12). A port that stops forwarding or
// learning is a topology change.
func (b *Bridge) makeBlocking(p *port) {
	if p.state == Disabled || p.state == Blocking {
		return
	}
	if p.state.Learns() {
		b.topologyChangeDetection()
	}
	b.setState(p, Blocking)
	p.forwardDelayTimer.stop()
}

// setState changes a port's state and tells the caller. A port that leaves
// Learning or Forwarding for Blocking or Disabled gets its learned addresses
// flushed, after the state change so that nothing is learned again.
func (b *Bridge) setState(p *port, s PortState) {
	old := p.state
	if old == s {
		return
	}
	p.state = s
	b.emit(Action{Kind: SetState, Port: p.no, State: s})
	if old.Learns() && (s == Blocking || s == Disabled) {
		b.emit(Action{Kind: FlushFDB, Port: p.no})
	}
}
