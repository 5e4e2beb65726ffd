package stp

// What an RSTP port sends, and in which protocol: the Port Transmit machine
// (802.1D-2004 17.26), the Port Protocol Migration machine (17.24) and the
// Bridge Detection machine (17.25).

type ptxState uint8

const (
	ptxInit ptxState = iota
	ptxIdle
)

// ptx steps the Port Transmit machine: a port sends when it has new
// information (newInfo) or its hello time has passed, at most TxHoldCount
// BPDUs a second. RST BPDUs go out of every role but disabled; towards an
// 802.1D neighbour a designated port sends config BPDUs and a root port
// TCNs. One departure from the figure: a root port sends a TCN only while
// it announces a topology change (tcWhile), not also when it agrees to a
// proposal, which an 802.1D neighbour never makes.
func (b *Bridge) ptx(p *port) bool {
	r := &p.r
	if !r.portEnabled {
		if r.ptx != ptxInit || !r.newInfo || r.txCount != 0 {
			r.ptx, r.newInfo, r.txCount = ptxInit, true, 0
		}
		return false
	}
	switch r.ptx {
	case ptxInit:
		b.ptxIdle(p)
		return true
	case ptxIdle:
		if !r.selected || r.updtInfo {
			return false
		}
		if r.helloWhen == 0 { // TRANSMIT_PERIODIC
			r.newInfo = r.newInfo || r.role == RoleDesignated || r.role == RoleRoot && r.tcWhile != 0
			b.ptxIdle(p)
			return true
		}
		if !r.newInfo || r.txCount >= TxHoldCount || r.role == RoleDisabled {
			return false
		}
		switch {
		case r.sendRSTP:
			b.txRSTP(p)
			r.tcAck = false
		case r.role == RoleDesignated:
			b.txConfig(p)
			r.tcAck = false
		case r.role == RoleRoot && r.tcWhile != 0:
			p.counters.TCNOut++
			b.emit(Action{Kind: SendBPDU, Port: p.no, BPDU: BPDU{Type: TypeTCN}})
		default:
			r.newInfo = false
			return false
		}
		r.newInfo = false
		r.txCount++
		b.ptxIdle(p)
		return true
	}
	return false
}

func (b *Bridge) ptxIdle(p *port) {
	p.r.ptx = ptxIdle
	p.r.helloWhen = b.helloTime()
}

// rstpBPDU is the information a port sends: its designated priority vector
// and times, rounded as the wire carries them.
func (b *Bridge) rstpBPDU(p *port) BPDU {
	r := &p.r
	return BPDU{
		TopologyChange: r.tcWhile != 0,
		RootID:         r.designatedPriority.root,
		RootPathCost:   r.designatedPriority.cost,
		BridgeID:       r.designatedPriority.bridge,
		PortID:         r.designatedPriority.port,
		MessageAge:     wireTime(r.designatedTimes.messageAge),
		MaxAge:         wireTime(r.designatedTimes.maxAge),
		HelloTime:      wireTime(r.designatedTimes.hello),
		ForwardDelay:   wireTime(r.designatedTimes.forwardDelay),
	}
}

// txRSTP (17.21.20).
func (b *Bridge) txRSTP(p *port) {
	r := &p.r
	m := b.rstpBPDU(p)
	m.Type, m.Version = TypeRST, 2
	m.Proposal, m.Agreement = r.proposing, r.agree
	m.Learning, m.Forwarding = r.learning, r.forwarding
	switch r.role {
	case RoleRoot:
		m.Role = BPDURoleRoot
	case RoleDesignated:
		m.Role = BPDURoleDesignated
	default:
		m.Role = BPDURoleAlternate
	}
	p.counters.ConfigOut++
	b.emit(Action{Kind: SendBPDU, Port: p.no, BPDU: m})
}

// txConfig (17.21.19): an 802.1D config BPDU.
func (b *Bridge) txConfig(p *port) {
	m := b.rstpBPDU(p)
	m.Type = TypeConfig
	m.TopologyChangeAck = p.r.tcAck
	if m.MessageAge >= m.MaxAge {
		return // an 802.1D bridge would discard it
	}
	p.counters.ConfigOut++
	b.emit(Action{Kind: SendBPDU, Port: p.no, BPDU: m})
}

type ppmState uint8

const (
	ppmCheckingRSTP ppmState = iota
	ppmSelectingSTP
	ppmSensing
)

// ppm steps the Port Protocol Migration machine: a port starts with RSTP;
// once MigrateTime has passed, a config or TCN BPDU makes it speak 802.1D
// (sendRSTP false) for at least MigrateTime, and an RST BPDU heard after
// that brings it back to RSTP. Disabling the port, or MCheck, starts over.
func (b *Bridge) ppm(p *port) bool {
	r := &p.r
	switch r.ppm {
	case ppmCheckingRSTP:
		if r.mdelayWhile != MigrateTime && !r.portEnabled {
			b.ppmCheckingRSTP(p)
			return true
		}
		if r.mdelayWhile == 0 {
			b.ppmSensing(p)
			return true
		}
	case ppmSelectingSTP:
		if r.mdelayWhile == 0 || !r.portEnabled || r.mcheck {
			b.ppmSensing(p)
			return true
		}
	case ppmSensing:
		if !r.portEnabled || r.mcheck || !r.sendRSTP && r.rcvdRSTP {
			b.ppmCheckingRSTP(p)
			return true
		}
		if r.sendRSTP && r.rcvdSTP {
			r.ppm = ppmSelectingSTP
			r.sendRSTP = false
			r.mdelayWhile = MigrateTime
			return true
		}
	}
	return false
}

func (b *Bridge) ppmCheckingRSTP(p *port) {
	r := &p.r
	r.ppm = ppmCheckingRSTP
	r.mcheck = false
	r.sendRSTP = true
	r.mdelayWhile = MigrateTime
}

func (b *Bridge) ppmSensing(p *port) {
	r := &p.r
	r.ppm = ppmSensing
	r.rcvdRSTP, r.rcvdSTP = false, false
}

// bdm steps the Bridge Detection machine (without auto-edge): an edge port
// stops being one when it hears a BPDU (operEdge cleared on receipt), and
// becomes one again, if configured so, while its link is down.
func (b *Bridge) bdm(p *port) bool {
	r := &p.r
	switch {
	case r.bdmOn && (!r.portEnabled && !r.adminEdge || !r.operEdge):
		r.bdmOn, r.operEdge = false, false
		return true
	case !r.bdmOn && !r.portEnabled && r.adminEdge:
		r.bdmOn, r.operEdge = true, true
		return true
	}
	return false
}
