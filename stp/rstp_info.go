package stp

import (
	"cmp"
	"time"
)

// What a port knows and which role it gets: the Port Information machine
// (802.1D-2004 17.27) and the Port Role Selection machine (17.28).

// vector is a priority vector (17.6) without its last component, the
// receiving port's ID, which only breaks ties between root path priority
// vectors and is compared apart. Lower is better.
type vector struct {
	root   BridgeID
	cost   uint32
	bridge BridgeID // designated bridge
	port   PortID   // designated port
}

func (v vector) compare(w vector) int {
	switch {
	case v.root != w.root:
		return cmp.Compare(v.root, w.root)
	case v.cost != w.cost:
		return cmp.Compare(v.cost, w.cost)
	case v.bridge != w.bridge:
		return cmp.Compare(v.bridge, w.bridge)
	}
	return cmp.Compare(v.port, w.port)
}

func (v vector) better(w vector) bool { return v.compare(w) < 0 }

// rtimes are the timer values carried with a priority vector (17.19.21).
type rtimes struct {
	messageAge, maxAge, hello, forwardDelay time.Duration
}

type infoIs uint8

const (
	infoDisabled infoIs = iota
	infoMine
	infoAged
	infoReceived
)

type rcvdInfo uint8

const (
	otherInfo rcvdInfo = iota
	superiorDesignatedInfo
	repeatedDesignatedInfo
	inferiorDesignatedInfo
	inferiorRootAlternateInfo
)

type pimState uint8

const (
	pimDisabled pimState = iota
	pimAged
	pimCurrent
)

// pim steps the Port Information machine (17.27).
func (b *Bridge) pim(p *port) bool {
	r := &p.r
	if !r.portEnabled && r.infoIs != infoDisabled {
		b.pimDisabled(p)
		return true
	}
	switch r.pim {
	case pimDisabled:
		if r.rcvdMsg {
			b.pimDisabled(p)
			return true
		}
		if r.portEnabled {
			r.pim, r.infoIs = pimAged, infoAged
			r.reselect, r.selected = true, false
			return true
		}
	case pimAged, pimCurrent:
		if r.selected && r.updtInfo {
			b.pimUpdate(p)
			return true
		}
		if r.pim == pimAged {
			return false
		}
		if r.infoIs == infoReceived && r.rcvdInfoWhile == 0 && !r.updtInfo && !r.rcvdMsg {
			r.pim, r.infoIs = pimAged, infoAged
			r.reselect, r.selected = true, false
			return true
		}
		if r.rcvdMsg && !r.updtInfo {
			b.pimReceive(p)
			return true
		}
	}
	return false
}

func (b *Bridge) pimDisabled(p *port) {
	r := &p.r
	r.pim = pimDisabled
	r.rcvdMsg = false
	r.proposing, r.proposed, r.agree, r.agreed = false, false, false, false
	r.rcvdInfoWhile = 0
	r.infoIs = infoDisabled
	r.reselect, r.selected = true, false
}

// pimUpdate is UPDATE then CURRENT: the port now carries this bridge's
// designated information.
func (b *Bridge) pimUpdate(p *port) {
	r := &p.r
	r.proposing, r.proposed = false, false
	r.agreed = r.agreed && r.infoIs == infoMine && r.designatedPriority.compare(r.portPriority) <= 0
	r.synced = r.synced && r.agreed
	r.portPriority = r.designatedPriority
	r.portTimes = r.designatedTimes
	r.updtInfo = false
	r.infoIs = infoMine
	r.newInfo = true
	r.pim = pimCurrent
}

// pimReceive is RECEIVE, the state its outcome leads to, then CURRENT.
func (b *Bridge) pimReceive(p *port) {
	r := &p.r
	switch b.rcvInfo(p) {
	case superiorDesignatedInfo:
		r.agreed, r.proposing = false, false
		b.recordProposal(p)
		b.setTcFlags(p)
		r.agree = r.agree && r.infoIs == infoReceived && r.msgPriority.compare(r.portPriority) <= 0
		r.portPriority = r.msgPriority
		r.portTimes = r.msgTimes
		b.updtRcvdInfoWhile(p)
		r.infoIs = infoReceived
		r.reselect, r.selected = true, false
	case repeatedDesignatedInfo:
		b.recordProposal(p)
		b.setTcFlags(p)
		b.updtRcvdInfoWhile(p)
	case inferiorDesignatedInfo:
		// recordDispute: a designated port that hears another designated
		// port learning on its segment (a link that works one way only)
		// stops.
		if r.rx.Type == TypeRST && r.rx.Learning {
			r.disputed, r.agreed = true, false
		}
	case inferiorRootAlternateInfo:
		// recordAgreement
		if r.p2p && r.rx.Type == TypeRST && r.rx.Agreement {
			r.agreed, r.proposing = true, false
		} else {
			r.agreed = false
		}
		b.setTcFlags(p)
	}
	r.rcvdMsg = false
	r.pim = pimCurrent
}

// rcvInfo classifies the received BPDU (17.21.8). A TCN BPDU carries no
// information; it sets rcvdTcn (setTcFlags). A config BPDU conveys a
// designated port, as does an RST BPDU whose role is unknown. An RST BPDU
// from the same designated bridge and port as the stored information
// always replaces it ("superior", 17.6), even if worse: that is what lets a
// failure far upstream heal without waiting for information to age out.
func (b *Bridge) rcvInfo(p *port) rcvdInfo {
	r := &p.r
	m := &r.rx
	if m.Type == TypeTCN {
		r.rcvdTcn = true
		return otherInfo
	}
	designated := m.Type == TypeConfig || m.Role == BPDURoleDesignated || m.Role == BPDURoleUnknown
	r.msgPriority = vector{m.RootID, m.RootPathCost, m.BridgeID, m.PortID}
	r.msgTimes = rtimes{
		messageAge:   m.MessageAge.Round(time.Second),
		maxAge:       min(max(m.MaxAge.Round(time.Second), MinMaxAge), MaxMaxAge),
		hello:        min(max(m.HelloTime.Round(time.Second), MinHelloTime), MaxHelloTime),
		forwardDelay: min(max(m.ForwardDelay.Round(time.Second), MinForwardDelay), MaxForwardDelay),
	}
	c := r.msgPriority.compare(r.portPriority)
	if !designated {
		if c >= 0 {
			return inferiorRootAlternateInfo
		}
		return otherInfo
	}
	sameSender := r.msgPriority.bridge.MAC() == r.portPriority.bridge.MAC() &&
		r.msgPriority.port.No() == r.portPriority.port.No()
	switch {
	case c < 0, sameSender && r.infoIs == infoReceived && (c != 0 || r.msgTimes != r.portTimes):
		return superiorDesignatedInfo
	case c == 0 && r.msgTimes != r.portTimes:
		return superiorDesignatedInfo
	case c == 0 && r.infoIs == infoReceived:
		return repeatedDesignatedInfo
	}
	return inferiorDesignatedInfo
}

// recordProposal (17.21.11). A root-guarded port ignores proposals: it can
// never become the root port, and agreeing would first put this bridge's
// designated ports through a sync, for a neighbour it does not follow.
func (b *Bridge) recordProposal(p *port) {
	if p.r.rx.Type == TypeRST && p.r.rx.Proposal && !p.rootGuard {
		p.r.proposed = true
	}
}

// setTcFlags (17.21.17) for config and RST BPDUs; TCNs are rcvInfo's.
func (b *Bridge) setTcFlags(p *port) {
	r := &p.r
	r.rcvdTc = r.rx.TopologyChange
	r.rcvdTcAck = r.rx.TopologyChangeAck
}

// updtRcvdInfoWhile (17.21.23): received information lives three hellos,
// or not at all if its message age has reached its max age.
func (b *Bridge) updtRcvdInfoWhile(p *port) {
	r := &p.r
	if r.portTimes.messageAge+time.Second <= r.portTimes.maxAge {
		r.rcvdInfoWhile = 3 * r.portTimes.hello
	} else {
		r.rcvdInfoWhile = 0
	}
}

// prs steps the Port Role Selection machine (17.28): when a port asks for
// it, every port's role is chosen again.
func (b *Bridge) prs() bool {
	any := false
	for _, p := range b.ports {
		any = any || p.r.reselect
	}
	if !any {
		return false
	}
	for _, p := range b.ports {
		p.r.reselect = false
	}
	b.updtRolesTree()
	for _, p := range b.ports {
		p.r.selected = true
	}
	return true
}

// updtRolesTree (17.21.25) chooses the root port, the root priority vector
// and times, each port's designated priority vector and times, and each
// port's role. Left out of the root port choice: information from this
// bridge itself (a backup port's), information naming this bridge's address
// as the root under another priority (stale, as in the 802.1D machine), and
// root-guarded ports, which are marked root-inconsistent when their
// information would have been the better root path.
func (b *Bridge) updtRolesTree() {
	bridgeVec := vector{b.id, 0, b.id, 0}
	rootVec := bridgeVec
	var root *port
	mac := b.id.MAC()
	for _, p := range b.ports {
		r := &p.r
		p.rootInconsistent = false
		if r.infoIs != infoReceived || r.portPriority.bridge.MAC() == mac || r.portPriority.root.MAC() == mac {
			continue
		}
		v := r.portPriority
		v.cost = addCost(v.cost, p.pathCost)
		if p.rootGuard {
			continue
		}
		if c := v.compare(rootVec); c < 0 || c == 0 && root != nil && p.id < root.id {
			rootVec, root = v, p
		}
	}
	for _, p := range b.ports {
		r := &p.r
		if p.rootGuard && r.infoIs == infoReceived && r.portPriority.bridge.MAC() != mac && r.portPriority.root.MAC() != mac {
			v := r.portPriority
			v.cost = addCost(v.cost, p.pathCost)
			p.rootInconsistent = v.better(rootVec)
		}
	}

	b.rootTimes = rtimes{maxAge: b.timers.maxAge, hello: b.timers.hello, forwardDelay: b.timers.forwardDelay}
	b.rootPort = 0
	if root != nil {
		b.rootTimes = root.r.portTimes
		b.rootTimes.messageAge += time.Second
		b.rootPort = root.no
	}
	b.designatedRoot, b.rootPathCost = rootVec.root, rootVec.cost
	b.current = timers{b.rootTimes.hello, b.rootTimes.maxAge, b.rootTimes.forwardDelay}

	for _, p := range b.ports {
		r := &p.r
		r.designatedPriority = vector{rootVec.root, rootVec.cost, b.id, p.id}
		r.designatedTimes = b.rootTimes
		r.designatedTimes.hello = b.timers.hello
		switch {
		case r.infoIs == infoDisabled:
			r.selectedRole = RoleDisabled
		case r.infoIs == infoAged:
			r.selectedRole, r.updtInfo = RoleDesignated, true
		case r.infoIs == infoMine:
			r.selectedRole = RoleDesignated
			r.updtInfo = r.portPriority != r.designatedPriority || r.portTimes != r.designatedTimes
		case p == root:
			r.selectedRole, r.updtInfo = RoleRoot, false
		case !r.designatedPriority.better(r.portPriority):
			r.selectedRole, r.updtInfo = RoleAlternate, false
			if r.portPriority.bridge.MAC() == mac {
				r.selectedRole = RoleBackup
			}
		default:
			r.selectedRole, r.updtInfo = RoleDesignated, true
		}
	}
}
