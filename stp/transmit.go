package stp

// What the bridge sends (802.1D-1998 8.6.1, 8.6.3, 8.6.4, 8.6.6).

// configBPDUGeneration sends a config BPDU on every designated port.
func (b *Bridge) configBPDUGeneration() {
	for _, p := range b.ports {
		if p.state != Disabled && b.isDesignatedPort(p) {
			b.transmitConfig(p)
		}
	}
}

// transmitConfig sends this bridge's information on p, at most once per
// HoldTime: while the hold timer runs, the BPDU is deferred to its expiry,
// not dropped. The message age is that of the root port's information, plus
// the time it has spent here, plus MessageAgeIncrement; information that
// would arrive aged out is not sent.
func (b *Bridge) transmitConfig(p *port) {
	if p.holdTimer.active {
		p.configPending = true
		return
	}
	m := BPDU{
		Type:              TypeConfig,
		TopologyChange:    b.tc,
		TopologyChangeAck: p.tcAck,
		RootID:            b.designatedRoot,
		RootPathCost:      b.rootPathCost,
		BridgeID:          b.id,
		PortID:            p.id,
		MaxAge:            wireTime(b.current.maxAge),
		HelloTime:         wireTime(b.current.hello),
		ForwardDelay:      wireTime(b.current.forwardDelay),
	}
	if rp := b.byNo[b.rootPort]; rp != nil {
		m.MessageAge = wireTime(rp.infoAge + b.now.Sub(rp.infoAt) + MessageAgeIncrement)
	}
	if m.MessageAge >= m.MaxAge {
		return
	}
	p.tcAck = false
	p.configPending = false
	p.holdTimer.start(b.now.Add(HoldTime))
	p.counters.ConfigOut++
	b.emit(Action{Kind: SendBPDU, Port: p.no, BPDU: m})
}

// transmitTCN sends a topology change notification out of the root port.
func (b *Bridge) transmitTCN() {
	if rp := b.byNo[b.rootPort]; rp != nil {
		rp.counters.TCNOut++
		b.emit(Action{Kind: SendBPDU, Port: rp.no, BPDU: BPDU{Type: TypeTCN}})
	}
}
