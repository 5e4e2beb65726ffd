package stp

import "time"

// Topology change the RSTP way (802.1D-2004 17.31): a port that starts
// forwarding (root or designated, not edge) or hears of a change flushes
// the addresses learned on the bridge's other ports at once and sends TC in
// its BPDUs for a couple of hellos (tcWhile); neighbours do the same. No
// TCN climbs to the root, except towards an 802.1D neighbour, nor does the
// forwarding database age faster: flushing replaces both.

type tcmState uint8

const (
	tcmInactive tcmState = iota
	tcmLearning
	tcmActive
)

// tcm steps the Topology Change machine.
func (b *Bridge) tcm(p *port) bool {
	r := &p.r
	rootOrDesignated := r.role == RoleRoot || r.role == RoleDesignated
	heard := r.rcvdTc || r.rcvdTcn || r.rcvdTcAck || r.tcProp
	switch r.tcm {
	case tcmInactive:
		if r.learn && !r.fdbFlush {
			b.tcmLearning(p)
			return true
		}
	case tcmLearning:
		switch {
		case rootOrDesignated && r.forward && !r.operEdge: // DETECTED
			b.newTcWhile(p)
			b.setTcPropTree(p)
			r.newInfo = true
			r.tcm = tcmActive
		case heard:
			b.tcmLearning(p)
		case !rootOrDesignated && !r.learn && !r.learning: // INACTIVE
			r.tcm = tcmInactive
			r.fdbFlush = true
			b.rstpFlush(p)
			r.tcWhile = 0
			r.tcAck = false
		default:
			return false
		}
		return true
	case tcmActive:
		switch {
		case !rootOrDesignated || r.operEdge:
			b.tcmLearning(p)
		case r.rcvdTcn: // NOTIFIED_TCN, then NOTIFIED_TC
			b.newTcWhile(p)
			b.notifiedTc(p)
		case r.rcvdTc: // NOTIFIED_TC
			b.notifiedTc(p)
		case r.tcProp && !r.operEdge: // PROPAGATING
			b.newTcWhile(p)
			r.fdbFlush = true
			b.rstpFlush(p)
			r.tcProp = false
		case r.rcvdTcAck: // ACKNOWLEDGED
			r.tcWhile = 0
			r.rcvdTcAck = false
		case r.tcProp: // an edge port has nothing to propagate to
			r.tcProp = false
		default:
			return false
		}
		return true
	}
	return false
}

func (b *Bridge) tcmLearning(p *port) {
	r := &p.r
	r.tcm = tcmLearning
	r.rcvdTc, r.rcvdTcn, r.rcvdTcAck, r.tcProp = false, false, false, false
}

// notifiedTc: a change heard on p goes to every other port; a TCN heard on
// a designated port is acknowledged in the next config BPDU, sent at once
// rather than at the next hello.
func (b *Bridge) notifiedTc(p *port) {
	r := &p.r
	r.rcvdTcn, r.rcvdTc = false, false
	if r.role == RoleDesignated {
		r.tcAck = true
		r.newInfo = true
	}
	b.setTcPropTree(p)
}

// newTcWhile (17.21.7) starts announcing a change on p: for two hellos
// (hello + 1 s) to an RSTP neighbour, for max age + forward delay to an
// 802.1D one, whose bridges age their tables fast while TC is set.
func (b *Bridge) newTcWhile(p *port) {
	r := &p.r
	if r.tcWhile != 0 {
		return
	}
	if !b.rstpTopologyChange() {
		b.tcCount++
		b.tcLast = b.now
	}
	if r.sendRSTP {
		r.tcWhile = b.helloTime() + time.Second
		r.newInfo = true
	} else {
		r.tcWhile = b.rootTimes.maxAge + b.rootTimes.forwardDelay
	}
}

func (b *Bridge) setTcPropTree(p *port) {
	for _, q := range b.ports {
		if q != p {
			q.r.tcProp = true
		}
	}
}
