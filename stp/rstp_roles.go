package stp

import "time"

// From role to state: the Port Role Transitions machine (802.1D-2004 17.29)
// and the Port State Transition machine (17.30).
//
// Only the machine's resting states are kept in prtState; its other states
// (ROOT_PROPOSED, DESIGNATED_SYNCED, ...) lead back at once to the resting
// state of their role, whose entry action runs again, as the figures say.

type prtState uint8

const (
	prtDisablePort prtState = iota
	prtDisabledPort
	prtRootPort
	prtDesignatedPort
	prtBlockPort
	prtAlternatePort
)

// Timer values a port's role transitions use (17.20).
func (b *Bridge) fwdDelay(p *port) time.Duration { return p.r.designatedTimes.forwardDelay }
func (b *Bridge) maxAgeOf(p *port) time.Duration { return p.r.designatedTimes.maxAge }
func (b *Bridge) helloTime() time.Duration       { return b.timers.hello }

// forwardDelay (17.20.5): how long a port waits in Discarding and in
// Learning when no agreement comes. Towards an RSTP neighbour it is a hello
// time; towards an 802.1D neighbour, the forward delay.
func (b *Bridge) forwardDelay(p *port) time.Duration {
	if p.r.sendRSTP {
		return b.helloTime()
	}
	return b.fwdDelay(p)
}

// edgeDelay (17.20.4).
func (b *Bridge) edgeDelay(p *port) time.Duration {
	if p.r.p2p {
		return MigrateTime
	}
	return b.maxAgeOf(p)
}

// prt steps the Port Role Transitions machine.
func (b *Bridge) prt(p *port) bool {
	r := &p.r
	if !r.selected || r.updtInfo {
		return false
	}
	if r.role != r.selectedRole {
		switch r.selectedRole {
		case RoleDisabled:
			r.prt, r.role = prtDisablePort, r.selectedRole
			r.learn, r.forward = false, false
		case RoleRoot:
			b.enterRootPort(p)
		case RoleDesignated:
			r.prt, r.role = prtDesignatedPort, RoleDesignated
		default: // alternate, backup
			r.prt, r.role = prtBlockPort, r.selectedRole
			r.learn, r.forward = false, false
		}
		return true
	}
	switch r.prt {
	case prtDisablePort:
		if !r.learning && !r.forwarding {
			b.disabledPort(p)
			return true
		}
	case prtDisabledPort:
		if r.fdWhile != b.maxAgeOf(p) || r.sync || r.reRoot || !r.synced {
			b.disabledPort(p)
			return true
		}
	case prtRootPort:
		return b.prtRoot(p)
	case prtDesignatedPort:
		return b.prtDesignated(p)
	case prtBlockPort:
		if !r.learning && !r.forwarding {
			b.alternatePort(p)
			return true
		}
	case prtAlternatePort:
		return b.prtAlternate(p)
	}
	return false
}

func (b *Bridge) disabledPort(p *port) {
	r := &p.r
	r.prt = prtDisabledPort
	r.fdWhile = b.maxAgeOf(p)
	r.synced = true
	r.rrWhile = 0
	r.sync, r.reRoot = false, false
}

func (b *Bridge) enterRootPort(p *port) {
	r := &p.r
	r.prt, r.role = prtRootPort, RoleRoot
	r.rrWhile = b.fwdDelay(p)
}

func (b *Bridge) alternatePort(p *port) {
	r := &p.r
	r.prt = prtAlternatePort
	r.fdWhile = b.forwardDelay(p)
	r.synced = true
	r.rrWhile = 0
	r.sync, r.reRoot = false, false
}

// prtRoot: the root port agrees to a proposal once every other port is in
// sync (discarding, or agreed), and forwards at once unless a port that
// was recently root might still forward (reRooted, rrWhile).
func (b *Bridge) prtRoot(p *port) bool {
	r := &p.r
	ready := r.fdWhile == 0 || b.reRooted(p) && r.rbWhile == 0
	switch {
	case !r.forward && !r.reRoot: // REROOT
		b.setReRootTree()
	case b.allSynced(p) && !r.agree || r.proposed && r.agree: // ROOT_AGREED
		r.proposed, r.sync = false, false
		r.agree, r.newInfo = true, true
	case r.proposed && !r.agree: // ROOT_PROPOSED
		b.setSyncTree()
		r.proposed = false
	case ready && !r.learn: // ROOT_LEARN
		r.fdWhile = b.forwardDelay(p)
		r.learn = true
	case ready && !r.forward: // ROOT_FORWARD
		r.fdWhile = 0
		r.forward = true
	case r.reRoot && r.forward: // REROOTED
		r.reRoot = false
	case r.rrWhile != b.fwdDelay(p):
	default:
		return false
	}
	b.enterRootPort(p)
	return true
}

// prtDesignated: a designated port proposes, and learns and forwards at
// once on agreement (or as an edge port), else when fdWhile runs out; it
// discards while the tree syncs to new information, and until a port that
// was root lately has retired (rrWhile).
func (b *Bridge) prtDesignated(p *port) bool {
	r := &p.r
	ready := (r.fdWhile == 0 || r.agreed || r.operEdge) && (r.rrWhile == 0 || !r.reRoot) && !r.sync
	switch {
	case r.reRoot && r.rrWhile == 0: // DESIGNATED_RETIRED
		r.reRoot = false
	case !r.learning && !r.forwarding && !r.synced, r.agreed && !r.synced,
		r.operEdge && !r.synced, r.sync && r.synced: // DESIGNATED_SYNCED
		r.rrWhile = 0
		r.synced, r.sync = true, false
	case !r.forward && !r.agreed && !r.proposing && !r.operEdge: // DESIGNATED_PROPOSE
		r.proposing = true
		r.edgeDelayWhile = b.edgeDelay(p)
		r.newInfo = true
	case (r.sync && !r.synced || r.reRoot && r.rrWhile != 0 || r.disputed) &&
		!r.operEdge && (r.learn || r.forward): // DESIGNATED_DISCARD
		r.learn, r.forward, r.disputed = false, false, false
		r.fdWhile = b.forwardDelay(p)
	case ready && !r.learn: // DESIGNATED_LEARN
		r.learn = true
		r.fdWhile = b.forwardDelay(p)
	case ready && !r.forward: // DESIGNATED_FORWARD
		r.forward = true
		r.fdWhile = 0
		r.agreed = r.sendRSTP
	default:
		return false
	}
	r.prt, r.role = prtDesignatedPort, RoleDesignated
	return true
}

// prtAlternate: an alternate or backup port discards; it agrees to a
// proposal once the tree is in sync.
func (b *Bridge) prtAlternate(p *port) bool {
	r := &p.r
	switch {
	case b.allSynced(p) && !r.agree || r.proposed && r.agree: // ALTERNATE_AGREED
		r.proposed = false
		r.agree, r.newInfo = true, true
	case r.proposed && !r.agree: // ALTERNATE_PROPOSED
		b.setSyncTree()
		r.proposed = false
	case r.role == RoleBackup && r.rbWhile != 2*b.helloTime(): // BACKUP_PORT
		r.rbWhile = 2 * b.helloTime()
	case r.fdWhile != b.forwardDelay(p) || r.sync || r.reRoot || !r.synced:
	default:
		return false
	}
	b.alternatePort(p)
	return true
}

// allSynced (17.20.3, as 802.1Q-2005 13.25.1 states it): every port has
// taken its selected role and, but for the root port, is synced.
func (b *Bridge) allSynced(p *port) bool {
	if p.r.role != RoleRoot && p.r.role != RoleAlternate {
		return false
	}
	for _, q := range b.ports {
		r := &q.r
		if !r.selected || r.role != r.selectedRole || r.updtInfo || r.role != RoleRoot && !r.synced {
			return false
		}
	}
	return true
}

// reRooted (17.20.10): no other port was root lately.
func (b *Bridge) reRooted(p *port) bool {
	for _, q := range b.ports {
		if q != p && q.r.rrWhile != 0 {
			return false
		}
	}
	return true
}

func (b *Bridge) setSyncTree() {
	for _, p := range b.ports {
		p.r.sync = true
	}
}

func (b *Bridge) setReRootTree() {
	for _, p := range b.ports {
		p.r.reRoot = true
	}
}

type pstState uint8

const (
	pstDiscarding pstState = iota
	pstLearning
	pstForwarding
)

// pst steps the Port State Transition machine: learning and forwarding
// follow learn and forward, and the switch hears of it.
func (b *Bridge) pst(p *port) bool {
	r := &p.r
	switch {
	case r.pst == pstDiscarding && r.learn:
		r.pst, r.learning, r.dirty = pstLearning, true, true
	case r.pst == pstLearning && !r.learn, r.pst == pstForwarding && !r.forward:
		r.pst, r.learning, r.forwarding = pstDiscarding, false, false
	case r.pst == pstLearning && r.forward:
		r.pst, r.forwarding = pstForwarding, true
	default:
		return false
	}
	b.rstpSyncState(p)
	return true
}
