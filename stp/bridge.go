package stp

import (
	"slices"
	"time"
)

// Bridge is the spanning-tree state of one bridge. It is a pure state
// machine: every method takes the current time and returns the actions the
// caller must carry out, in order. It starts no goroutine and reads no clock.
// It is not safe for concurrent use; the caller serializes calls (one lock
// around the Bridge, as the kernel's bridge lock).
//
// Every call first fires the timers due at its time, so an event that comes
// late after a deadline sees the timer expired, and its actions come first.
// Times passed in must not go backwards; an earlier time is taken as the
// latest one seen.
type Bridge struct {
	proto   Protocol
	id      BridgeID
	timers  timers // the bridge's own: used when it is the root
	current timers // in use: learned from the root (802.1D's Max Age, ...)

	designatedRoot BridgeID
	rootPathCost   uint32
	rootPort       PortNo // 0: this bridge is the root

	tcDetected bool // a topology change is being notified towards the root
	tc         bool // a topology change is in progress (TC flag)
	tcCount    uint64
	tcLast     time.Time
	ageing     time.Duration // short ageing announced to the switch; 0: normal

	rtick     timer  // RSTP: the port timers' one-second tick
	rootTimes rtimes // RSTP: the times of the root priority vector

	helloTimer timer // root only: send config BPDUs
	tcnTimer   timer // resend a TCN until acknowledged
	tcTimer    timer // root only: how long the TC flag stays set

	ports []*port // in port-number order, for deterministic output
	byNo  map[PortNo]*port

	now time.Time // the time of the event being handled
	out []Action  // the actions of the event being handled
}

// New returns a bridge with no ports; it is the root of its own tree until
// it hears of a better one.
func New(cfg Config, now time.Time) (*Bridge, error) {
	if err := validateAddress(cfg.MAC); err != nil {
		return nil, err
	}
	t := timers{cfg.HelloTime, cfg.MaxAge, cfg.ForwardDelay}.withDefaults()
	if err := t.validate(); err != nil {
		return nil, err
	}
	if err := validateProtocol(cfg.Protocol); err != nil {
		return nil, err
	}
	id := NewBridgeID(cfg.Priority, cfg.MAC)
	b := &Bridge{
		proto:          cfg.Protocol,
		id:             id,
		timers:         t,
		current:        t,
		designatedRoot: id,
		byNo:           make(map[PortNo]*port),
		now:            now,
	}
	if b.proto == ProtocolRSTP {
		b.rstpStart()
		return b, nil
	}
	b.helloTimer.start(now.Add(t.hello))
	return b, nil
}

// Receive handles a BPDU received on port no (802.1D-1998 8.7.1, 8.7.2).
// BPDUs on a disabled port, config BPDUs whose message age has reached their
// max age, this port's own BPDUs looped back and BPDUs of an unknown type are
// discarded and counted (PortCounters.Discarded); on an unknown port they are
// ignored. On an 802.1D bridge an RST BPDU is handled as a config BPDU, as
// an 802.1D-2004 bridge in STP compatibility does: its role and handshake
// flags are ignored, and a neighbouring RSTP bridge falls back to STP when
// it hears our config BPDUs. On an RSTP bridge an RST BPDU whose version is
// below 2 is discarded too (802.1D-2004 9.3.4).
func (b *Bridge) Receive(no PortNo, m BPDU, now time.Time) []Action {
	b.begin(now)
	p := b.byNo[no]
	switch {
	case p == nil:
	case b.proto == ProtocolRSTP:
		b.rstpReceive(p, &m)
	case p.state == Disabled:
		p.counters.Discarded++
	case m.Type == TypeTCN:
		p.counters.TCNIn++
		b.receivedTCN(p)
	case m.Type != TypeConfig && m.Type != TypeRST,
		m.MessageAge >= m.MaxAge,
		m.BridgeID == b.id && m.PortID == p.id:
		p.counters.Discarded++
	default:
		p.counters.ConfigIn++
		b.receivedConfig(p, &m)
	}
	return b.end()
}

// receivedConfig is 802.1D-1998 8.7.1.
func (b *Bridge) receivedConfig(p *port, m *BPDU) {
	if !b.supersedesPortInfo(p, m) {
		if b.isDesignatedPort(p) {
			b.transmitConfig(p) // reply with the better information
		}
		return
	}
	wasRoot := b.isRootBridge()
	b.recordConfigInformation(p, m)
	b.configurationUpdate()
	b.portStateSelection()
	b.rootChanged(wasRoot)
	if p.no == b.rootPort {
		b.recordConfigTimeoutValues(m)
		b.configBPDUGeneration()
		if m.TopologyChangeAck {
			b.topologyChangeAcknowledged()
		}
	}
}

// receivedTCN is 802.1D-1998 8.7.2.
func (b *Bridge) receivedTCN(p *port) {
	if b.isDesignatedPort(p) {
		b.topologyChangeDetection()
		b.acknowledgeTopologyChange(p)
	}
}

// recordConfigInformation stores the information of a superior BPDU and
// starts the port's message age timer: it expires when the information is
// max age old. Max age is the value in use on this bridge, learned from the
// root, as in 802.1D-1998 and Linux: a neighbour cannot keep its information
// alive longer by announcing a larger max age.
func (b *Bridge) recordConfigInformation(p *port, m *BPDU) {
	p.designatedRoot = m.RootID
	p.designatedCost = m.RootPathCost
	p.designatedBridge = m.BridgeID
	p.designatedPort = m.PortID
	p.infoAge = m.MessageAge
	p.infoAt = b.now
	p.messageAgeTimer.start(b.now.Add(b.current.maxAge - m.MessageAge))
}

// recordConfigTimeoutValues adopts the root's timers and TC flag, heard on
// the root port. Timers outside the 802.1D ranges are brought into them: a
// broken root must not make this bridge forward at once (forward delay 0)
// or age everything out at every tick (max age 0).
func (b *Bridge) recordConfigTimeoutValues(m *BPDU) {
	b.current = timers{
		hello:        min(max(m.HelloTime, MinHelloTime), MaxHelloTime),
		maxAge:       min(max(m.MaxAge, MinMaxAge), MaxMaxAge),
		forwardDelay: min(max(m.ForwardDelay, MinForwardDelay), MaxForwardDelay),
	}
	b.setTopologyChange(m.TopologyChange)
}

// begin starts handling an event at now: first the timers due by then fire.
func (b *Bridge) begin(now time.Time) {
	b.out = nil
	b.runTimers(now)
}

// end finishes an event: it brings the switch's ageing in line with the
// topology change flag and hands over the actions.
func (b *Bridge) end() []Action {
	want := time.Duration(0)
	if b.tc {
		want = b.current.forwardDelay
	}
	if want != b.ageing {
		if want == 0 {
			b.emit(Action{Kind: RestoreAgeing})
		} else {
			b.emit(Action{Kind: SetAgeing, Ageing: want})
		}
		b.ageing = want
	}
	out := b.out
	b.out = nil
	return out
}

func (b *Bridge) emit(a Action) { b.out = append(b.out, a) }

// insertPort adds p in port-number order.
func (b *Bridge) insertPort(p *port) {
	i, _ := slices.BinarySearchFunc(b.ports, p.no, func(q *port, no PortNo) int { return int(q.no) - int(no) })
	b.ports = slices.Insert(b.ports, i, p)
	b.byNo[p.no] = p
}

func (b *Bridge) deletePort(p *port) {
	b.ports = slices.DeleteFunc(b.ports, func(q *port) bool { return q == p })
	delete(b.byNo, p.no)
}
