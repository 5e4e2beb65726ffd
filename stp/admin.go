package stp

import (
	"fmt"
	"time"
)

// Management, br_stp_if.c's half of the work (802.1D-1998 8.8.3 to 8.8.6):
// setters that check their ranges and recompute the tree.

// SetBridgePriority changes the bridge priority, and so the bridge ID
// (8.8.4). Every 16-bit value is accepted, as by Linux; 802.1D-2004 bridges
// only use multiples of 4096.
func (b *Bridge) SetBridgePriority(prio uint16, now time.Time) []Action {
	b.begin(now)
	old := b.id
	b.id = NewBridgeID(prio, old.MAC())
	if b.proto == ProtocolRSTP {
		b.rstpReselect(b.id != old)
		return b.end()
	}
	if b.id != old {
		wasRoot := b.designatedRoot == old
		for _, p := range b.ports {
			if p.state != Disabled && p.designatedBridge == old && p.designatedPort == p.id {
				p.designatedBridge = b.id
			}
		}
		if wasRoot {
			b.designatedRoot = b.id
		}
		b.configurationUpdate()
		b.portStateSelection()
		b.rootChanged(wasRoot)
	}
	return b.end()
}

// SetTimers changes the timers the bridge announces when it is the root
// (8.8.3); zero values take the defaults. They take effect at once if the
// bridge is the root, otherwise when it becomes the root.
func (b *Bridge) SetTimers(hello, maxAge, forwardDelay time.Duration, now time.Time) ([]Action, error) {
	t := timers{hello, maxAge, forwardDelay}.withDefaults()
	if err := t.validate(); err != nil {
		return nil, err
	}
	b.begin(now)
	b.timers = t
	if b.proto == ProtocolRSTP {
		b.rstpReselect(true)
		return b.end(), nil
	}
	if b.isRootBridge() {
		b.current = t
	}
	return b.end(), nil
}

// SetPortPriority changes a port's priority, and so its port ID (8.8.5).
func (b *Bridge) SetPortPriority(no PortNo, prio uint8, now time.Time) ([]Action, error) {
	p, err := b.adminPort(no, "set priority of")
	if err != nil {
		return nil, err
	}
	if err := validatePortPriority(prio); err != nil {
		return nil, err
	}
	b.begin(now)
	id := NewPortID(prio, no)
	if b.proto == ProtocolRSTP {
		p.id = id
		b.rstpReselect(true)
		return b.end(), nil
	}
	if b.isDesignatedPort(p) {
		p.designatedPort = id
	}
	p.id = id
	if p.state != Disabled && p.designatedBridge == b.id && p.id < p.designatedPort {
		b.becomeDesignatedPort(p)
	}
	b.reselect()
	return b.end(), nil
}

// SetPortCost changes a port's path cost (8.8.6); 0 takes DefaultPathCost.
func (b *Bridge) SetPortCost(no PortNo, cost uint32, now time.Time) ([]Action, error) {
	p, err := b.adminPort(no, "set path cost of")
	if err != nil {
		return nil, err
	}
	cost, err = portCost(cost)
	if err != nil {
		return nil, err
	}
	b.begin(now)
	p.pathCost = cost
	b.reselect()
	return b.end(), nil
}

// SetRootGuard turns root guard on or off for a port (see PortConfig).
func (b *Bridge) SetRootGuard(no PortNo, on bool, now time.Time) ([]Action, error) {
	p, err := b.adminPort(no, "set root guard of")
	if err != nil {
		return nil, err
	}
	b.begin(now)
	p.rootGuard = on
	b.reselect()
	return b.end(), nil
}

// SetPortEdge changes PortConfig.Edge (RSTP). Turning it off takes effect at
// once; turning it on, the next time the port's link comes up.
func (b *Bridge) SetPortEdge(no PortNo, on bool, now time.Time) ([]Action, error) {
	p, err := b.adminPort(no, "set edge of")
	if err != nil {
		return nil, err
	}
	b.begin(now)
	p.r.adminEdge = on
	if !on && p.r.portEnabled {
		p.r.operEdge = false
	}
	b.reselect()
	return b.end(), nil
}

// SetPortPointToPoint changes PortConfig.PointToPoint (RSTP).
func (b *Bridge) SetPortPointToPoint(no PortNo, on bool, now time.Time) ([]Action, error) {
	p, err := b.adminPort(no, "set point-to-point of")
	if err != nil {
		return nil, err
	}
	b.begin(now)
	p.r.p2p = on
	b.reselect()
	return b.end(), nil
}

// MCheck makes an RSTP port that fell back to 802.1D try RSTP again
// (802.1D-2004 17.19.13): it sends RST BPDUs, and stays with RSTP unless it
// hears an 802.1D BPDU again after MigrateTime. Use it when the 802.1D
// neighbour is gone, or has been upgraded. (A port whose link goes down
// and up does it by itself.) On an 802.1D bridge it does nothing.
func (b *Bridge) MCheck(no PortNo, now time.Time) ([]Action, error) {
	p, err := b.adminPort(no, "mcheck")
	if err != nil {
		return nil, err
	}
	b.begin(now)
	if b.proto == ProtocolRSTP && p.r.portEnabled {
		p.r.mcheck = true
		b.rstpRun()
	}
	return b.end(), nil
}

// rstpReselect chooses every port's role again, after a change of the
// bridge's or a port's parameters.
func (b *Bridge) rstpReselect(changed bool) {
	if changed {
		b.rstpReselectAll()
	}
	b.rstpRun()
}

// reselect runs the election again after a management change.
func (b *Bridge) reselect() {
	if b.proto == ProtocolRSTP {
		b.rstpReselect(true)
		return
	}
	wasRoot := b.isRootBridge()
	b.configurationUpdate()
	b.portStateSelection()
	b.rootChanged(wasRoot)
}

func (b *Bridge) adminPort(no PortNo, op string) (*port, error) {
	if p := b.byNo[no]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("stp: %s port %d: %w", op, no, ErrNoSuchPort)
}
