package stp

// Topology change (802.1D-1998 8.6.14 to 8.6.16). A bridge that sees its
// active topology change tells the root with TCN BPDUs out of its root port,
// every hello time until the parent acknowledges (TCA); each bridge on the
// way does the same. The root then sets TC in its config BPDUs for max age +
// forward delay, and while TC is set every bridge ages its forwarding
// database at the forward delay instead of the ageing time, so that stations
// are relearned along the new paths. The switch hears of it through the
// SetAgeing and RestoreAgeing actions (see Bridge.end).

// topologyChangeDetection is 8.6.14.
func (b *Bridge) topologyChangeDetection() {
	switch {
	case b.isRootBridge():
		b.setTopologyChange(true)
		b.tcTimer.start(b.now.Add(b.timers.maxAge + b.timers.forwardDelay))
	case !b.tcDetected:
		b.transmitTCN()
		b.tcnTimer.start(b.now.Add(b.timers.hello))
	}
	b.tcDetected = true
}

// topologyChangeAcknowledged is 8.6.15: the parent heard the TCN.
func (b *Bridge) topologyChangeAcknowledged() {
	b.tcDetected = false
	b.tcnTimer.stop()
}

// acknowledgeTopologyChange is 8.6.16: answer a TCN on p with a config BPDU
// carrying TCA.
func (b *Bridge) acknowledgeTopologyChange(p *port) {
	p.tcAck = true
	b.transmitConfig(p)
}

// setTopologyChange sets the TC flag and counts the changes that start.
func (b *Bridge) setTopologyChange(on bool) {
	if on && !b.tc {
		b.tcCount++
		b.tcLast = b.now
	}
	b.tc = on
}
