package stp

// The election, br_stp.c's half of the work: 802.1D-1998 clause 8.6, the
// procedures that compare priority vectors and choose the root, the root
// port and the designated ports.

// isRootBridge reports whether this bridge believes itself the root.
func (b *Bridge) isRootBridge() bool { return b.designatedRoot == b.id }

// isDesignatedPort reports whether this bridge is the designated bridge of
// p's segment, through p.
func (b *Bridge) isDesignatedPort(p *port) bool {
	return p.designatedBridge == b.id && p.designatedPort == p.id
}

// isDesignatedForSomePort reports whether this bridge is designated on any
// enabled port: whether a change here matters to someone downstream.
func (b *Bridge) isDesignatedForSomePort() bool {
	for _, p := range b.ports {
		if p.state != Disabled && p.designatedBridge == b.id {
			return true
		}
	}
	return false
}

// supersedesPortInfo reports whether m carries better information than p
// holds, or fresher information from the same designated bridge (8.6.2.2).
// As in 802.1D-1998, worse information from the designated bridge is not
// taken: the stored information has to age out first.
func (b *Bridge) supersedesPortInfo(p *port, m *BPDU) bool {
	switch {
	case m.RootID != p.designatedRoot:
		return m.RootID < p.designatedRoot
	case m.RootPathCost != p.designatedCost:
		return m.RootPathCost < p.designatedCost
	case m.BridgeID != p.designatedBridge:
		return m.BridgeID < p.designatedBridge
	}
	return m.BridgeID != b.id || m.PortID <= p.designatedPort
}

// configurationUpdate is 8.6.7: choose the root and the designated ports.
func (b *Bridge) configurationUpdate() {
	b.rootSelection()
	b.designatedPortSelection()
}

// rootSelection is 8.6.8: the root port is the port with the best path to
// the best root. A root-guarded port whose information would win is marked
// root-inconsistent and left out, and the election runs again without it.
func (b *Bridge) rootSelection() {
	for _, p := range b.ports {
		p.rootInconsistent = false
	}
	var root *port
	for {
		root = nil
		for _, p := range b.ports {
			if b.mayBecomeRootPort(p) && (root == nil || isBetterRootPort(p, root)) {
				root = p
			}
		}
		if root == nil || !root.rootGuard {
			break
		}
		root.rootInconsistent = true
	}
	if root == nil {
		b.rootPort = 0
		b.designatedRoot = b.id
		b.rootPathCost = 0
		return
	}
	b.rootPort = root.no
	b.designatedRoot = root.designatedRoot
	b.rootPathCost = addCost(root.designatedCost, root.pathCost)
}

// mayBecomeRootPort reports whether p holds another bridge's information
// about a root better than this bridge. A root with this bridge's own
// address is stale information about this bridge under an older priority:
// it is never a root to follow (an addition to 802.1D-1998, which would
// follow it until it aged out).
func (b *Bridge) mayBecomeRootPort(p *port) bool {
	return p.state != Disabled && !p.rootInconsistent && !b.isDesignatedPort(p) &&
		p.designatedRoot < b.id && p.designatedRoot.MAC() != b.id.MAC()
}

// isBetterRootPort compares two candidate root ports: root, path cost
// through the port, designated bridge, designated port, then the port's own ID.
func isBetterRootPort(p, q *port) bool {
	if p.designatedRoot != q.designatedRoot {
		return p.designatedRoot < q.designatedRoot
	}
	pc, qc := addCost(p.designatedCost, p.pathCost), addCost(q.designatedCost, q.pathCost)
	if pc != qc {
		return pc < qc
	}
	if p.designatedBridge != q.designatedBridge {
		return p.designatedBridge < q.designatedBridge
	}
	if p.designatedPort != q.designatedPort {
		return p.designatedPort < q.designatedPort
	}
	return p.id < q.id
}

// designatedPortSelection is 8.6.9. A root-inconsistent port keeps the
// superior information it heard, so that it stays blocked until that ages
// out.
func (b *Bridge) designatedPortSelection() {
	for _, p := range b.ports {
		if p.state != Disabled && !p.rootInconsistent && b.shouldBecomeDesignatedPort(p) {
			b.becomeDesignatedPort(p)
		}
	}
}

// shouldBecomeDesignatedPort reports whether this bridge offers p's segment
// a better path to the root than the segment's designated bridge does.
func (b *Bridge) shouldBecomeDesignatedPort(p *port) bool {
	switch {
	case b.isDesignatedPort(p):
		return true
	case p.designatedRoot != b.designatedRoot:
		return true
	case b.rootPathCost != p.designatedCost:
		return b.rootPathCost < p.designatedCost
	case b.id != p.designatedBridge:
		return b.id < p.designatedBridge
	}
	return p.id < p.designatedPort
}

// becomeDesignatedPort is 8.6.10: p's segment now hears this bridge's
// information through p.
func (b *Bridge) becomeDesignatedPort(p *port) {
	p.designatedRoot = b.designatedRoot
	p.designatedCost = b.rootPathCost
	p.designatedBridge = b.id
	p.designatedPort = p.id
}

// portStateSelection is 8.6.11: root and designated ports head for
// Forwarding, the others block.
func (b *Bridge) portStateSelection() {
	for _, p := range b.ports {
		switch {
		case p.state == Disabled:
		case p.no == b.rootPort:
			p.configPending = false
			p.tcAck = false
			b.makeForwarding(p)
		case b.isDesignatedPort(p):
			p.messageAgeTimer.stop()
			b.makeForwarding(p)
		default:
			p.configPending = false
			p.tcAck = false
			b.makeBlocking(p)
		}
	}
}

// rootChanged finishes an election that may have made this bridge the root
// or taken that away (8.7.1 and 8.7.4's epilogues).
func (b *Bridge) rootChanged(wasRoot bool) {
	isRoot := b.isRootBridge()
	switch {
	case isRoot && !wasRoot:
		b.becomeRootBridge()
	case !isRoot && wasRoot:
		b.helloTimer.stop()
		if b.tcDetected {
			b.tcTimer.stop()
			b.transmitTCN()
			b.tcnTimer.start(b.now.Add(b.timers.hello))
		}
	}
}

// becomeRootBridge: the bridge announces its own timers, reports the change
// and starts sending config BPDUs.
func (b *Bridge) becomeRootBridge() {
	b.current = b.timers
	b.topologyChangeDetection()
	b.tcnTimer.stop()
	b.configBPDUGeneration()
	b.helloTimer.start(b.now.Add(b.timers.hello))
}
