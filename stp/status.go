package stp

import "time"

// Role is a port's part in the tree. An 802.1D bridge reports RoleDisabled,
// RoleRoot, RoleDesignated and RoleBlocked; an RSTP bridge reports
// RoleAlternate or RoleBackup where 802.1D would say RoleBlocked.
type Role uint8

const (
	RoleDisabled   Role = iota // the port is down
	RoleRoot                   // the port leads towards the root
	RoleDesignated             // the port serves its segment
	RoleBlocked                // 802.1D: neither, the port blocks
	// RoleAlternate (RSTP): another path to the root, discarding, ready to
	// take over from the root port.
	RoleAlternate
	// RoleBackup (RSTP): a second port of this bridge on a segment where
	// another of its ports is designated, discarding.
	RoleBackup
)

var roleNames = [...]string{
	RoleDisabled:   "disabled",
	RoleRoot:       "root",
	RoleDesignated: "designated",
	RoleBlocked:    "blocked",
	RoleAlternate:  "alternate",
	RoleBackup:     "backup",
}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "unknown"
}

// Status is a snapshot of a bridge's spanning-tree state.
type Status struct {
	Protocol     Protocol // the bridge's protocol
	BridgeID     BridgeID
	RootID       BridgeID
	RootPort     PortNo // 0 when this bridge is the root
	RootPathCost uint32

	// The timers in use, learned from the root.
	HelloTime, MaxAge, ForwardDelay time.Duration
	// The bridge's own timers, announced when it is the root.
	BridgeHelloTime, BridgeMaxAge, BridgeForwardDelay time.Duration

	TopologyChange         bool      // TC: the forwarding database ages at the forward delay
	TopologyChangeDetected bool      // a TCN is on its way to the root
	TopologyChanges        uint64    // how many topology changes started
	LastTopologyChange     time.Time // when the last one started; zero if none

	Ports []PortStatus // in port-number order
}

// IsRoot reports whether the bridge is the root.
func (s Status) IsRoot() bool { return s.RootID == s.BridgeID }

// Port returns the status of port no.
func (s Status) Port(no PortNo) (PortStatus, bool) {
	for _, p := range s.Ports {
		if p.No == no {
			return p, true
		}
	}
	return PortStatus{}, false
}

// PortStatus is a snapshot of one port.
type PortStatus struct {
	No        PortNo
	ID        PortID
	State     PortState
	Role      Role
	PathCost  uint32
	RootGuard bool
	// RootInconsistent: root guard is blocking superior information heard on
	// the port; it clears when that information ages out.
	RootInconsistent bool

	DesignatedRoot   BridgeID
	DesignatedCost   uint32
	DesignatedBridge BridgeID
	DesignatedPort   PortID

	TopologyChangeAck bool
	ConfigPending     bool
	Counters          PortCounters

	// Protocol is what the port speaks: ProtocolSTP on an 802.1D bridge,
	// and on an RSTP bridge's port that fell back to 802.1D because it
	// heard an 802.1D bridge; ProtocolRSTP otherwise.
	Protocol Protocol
	// RSTP only: Edge is the port's operational edge status (AdminEdge is
	// PortConfig.Edge); PointToPoint is PortConfig.PointToPoint.
	Edge, AdminEdge, PointToPoint bool
}

// Status returns a snapshot of the bridge.
func (b *Bridge) Status() Status {
	s := Status{
		Protocol:               b.proto,
		BridgeID:               b.id,
		RootID:                 b.designatedRoot,
		RootPort:               b.rootPort,
		RootPathCost:           b.rootPathCost,
		HelloTime:              b.current.hello,
		MaxAge:                 b.current.maxAge,
		ForwardDelay:           b.current.forwardDelay,
		BridgeHelloTime:        b.timers.hello,
		BridgeMaxAge:           b.timers.maxAge,
		BridgeForwardDelay:     b.timers.forwardDelay,
		TopologyChange:         b.tc,
		TopologyChangeDetected: b.tcDetected,
		TopologyChanges:        b.tcCount,
		LastTopologyChange:     b.tcLast,
		Ports:                  make([]PortStatus, 0, len(b.ports)),
	}
	for _, p := range b.ports {
		s.Ports = append(s.Ports, PortStatus{
			No:                p.no,
			ID:                p.id,
			State:             p.state,
			Role:              b.role(p),
			PathCost:          p.pathCost,
			RootGuard:         p.rootGuard,
			RootInconsistent:  p.rootInconsistent,
			DesignatedRoot:    p.designatedRoot,
			DesignatedCost:    p.designatedCost,
			DesignatedBridge:  p.designatedBridge,
			DesignatedPort:    p.designatedPort,
			TopologyChangeAck: p.tcAck,
			ConfigPending:     p.configPending,
			Counters:          p.counters,
			Protocol:          ProtocolSTP,
		})
		if b.proto == ProtocolRSTP {
			b.rstpPortStatus(p, &s.Ports[len(s.Ports)-1])
		}
	}
	if b.proto == ProtocolRSTP {
		s.TopologyChange = b.rstpTopologyChange()
	}
	return s
}

func (b *Bridge) role(p *port) Role {
	switch {
	case p.state == Disabled:
		return RoleDisabled
	case p.no == b.rootPort:
		return RoleRoot
	case b.isDesignatedPort(p):
		return RoleDesignated
	}
	return RoleBlocked
}
