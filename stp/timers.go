package stp

import "time"

// Timers, br_stp_timer.c's half of the work: one handler per timer
// (802.1D-1998 8.7.4 to 8.7.9). A timer is a deadline; every entry point
// first fires the deadlines that have passed, earliest first, each as if at
// its own deadline, so that the outcome does not depend on how often Tick is
// called, as long as it is at least every second.

type timer struct {
	active bool
	at     time.Time
}

func (t *timer) start(at time.Time) { t.active, t.at = true, at }
func (t *timer) stop()              { t.active = false }

// maxTimerLag bounds how late a timer is taken to fire. Overdue timers fire
// as if at their deadline, so the outcome does not depend on the tick rate;
// but after a long stall (a suspended machine, a clock jump) they fire as if
// at most this late, so that one Tick does not replay an hour of hellos.
const maxTimerLag = time.Second

// maxFiresPerTick bounds the work of one Tick; the timers left fire at the
// next. Every timer fires at most a few times per second, so it is a guard,
// never reached.
const maxFiresPerTick = 10_000

// Tick fires the timers whose deadline is at or before now and returns what
// they ask. The caller calls it at least every 100 ms to 1 s, or exactly at
// NextTimer. (Every other entry point also fires the timers due at its time
// before it handles its event.) After a longer stall the overdue timers fire
// once, as if a second late: the ports wait their forward delays again rather
// than count time in which the bridge heard nothing.
func (b *Bridge) Tick(now time.Time) []Action {
	b.begin(now)
	return b.end()
}

// runTimers fires, earliest first, the timers due at or before now, each as
// if at its deadline (or maxTimerLag before now, if later), then moves the
// bridge's time to now.
func (b *Bridge) runTimers(now time.Time) {
	for range maxFiresPerTick {
		d := b.earliestTimer()
		if d.t == nil || d.t.at.After(now) {
			break
		}
		at := d.t.at
		if lag := now.Add(-maxTimerLag); at.Before(lag) {
			at = lag
		}
		if at.After(b.now) {
			b.now = at
		}
		d.t.stop()
		b.fire(d)
	}
	if now.After(b.now) {
		b.now = now
	}
}

// NextTimer returns the earliest deadline of a running timer: the caller
// that wants to sleep between events calls Tick then. It reports false when
// no timer runs.
func (b *Bridge) NextTimer() (time.Time, bool) {
	if d := b.earliestTimer(); d.t != nil {
		return d.t.at, true
	}
	return time.Time{}, false
}

type timerKind uint8

const (
	helloTimer timerKind = iota
	tcnTimer
	topologyChangeTimer
	messageAgeTimer
	forwardDelayTimer
	holdTimer
	rstpTickTimer
)

// due is a running timer: which one, and whose.
type due struct {
	t    *timer
	kind timerKind
	p    *port
}

// earliestTimer returns the running timer with the earliest deadline; ties
// go to bridge timers first, then ports in order.
func (b *Bridge) earliestTimer() due {
	var best due
	consider := func(t *timer, kind timerKind, p *port) {
		if t.active && (best.t == nil || t.at.Before(best.t.at)) {
			best = due{t, kind, p}
		}
	}
	consider(&b.helloTimer, helloTimer, nil)
	consider(&b.tcnTimer, tcnTimer, nil)
	consider(&b.tcTimer, topologyChangeTimer, nil)
	consider(&b.rtick, rstpTickTimer, nil)
	for _, p := range b.ports {
		consider(&p.messageAgeTimer, messageAgeTimer, p)
		consider(&p.forwardDelayTimer, forwardDelayTimer, p)
		consider(&p.holdTimer, holdTimer, p)
	}
	return best
}

func (b *Bridge) fire(d due) {
	switch d.kind {
	case helloTimer:
		b.helloTimerExpired()
	case tcnTimer:
		b.tcnTimerExpired()
	case topologyChangeTimer:
		b.topologyChangeTimerExpired()
	case messageAgeTimer:
		b.messageAgeTimerExpired(d.p)
	case forwardDelayTimer:
		b.forwardDelayTimerExpired(d.p)
	case holdTimer:
		b.holdTimerExpired(d.p)
	case rstpTickTimer:
		b.rstpTickExpired()
	}
}

// helloTimerExpired: the root sends config BPDUs every hello time (8.7.4).
func (b *Bridge) helloTimerExpired() {
	b.configBPDUGeneration()
	b.helloTimer.start(b.now.Add(b.timers.hello))
}

// messageAgeTimerExpired: the information of p's designated bridge aged out;
// this bridge takes over the segment and the tree is recomputed (8.7.5).
func (b *Bridge) messageAgeTimerExpired(p *port) {
	wasRoot := b.isRootBridge()
	b.becomeDesignatedPort(p)
	b.configurationUpdate()
	b.portStateSelection()
	b.rootChanged(wasRoot)
}

// forwardDelayTimerExpired moves a port from Listening to Learning and from
// Learning to Forwarding (8.7.6). A bridge that starts forwarding on a port
// and is designated somewhere has changed the topology.
func (b *Bridge) forwardDelayTimerExpired(p *port) {
	switch p.state {
	case Listening:
		b.setState(p, Learning)
		p.forwardDelayTimer.start(b.now.Add(b.current.forwardDelay))
	case Learning:
		b.setState(p, Forwarding)
		if b.isDesignatedForSomePort() {
			b.topologyChangeDetection()
		}
	}
}

// tcnTimerExpired resends the TCN until it is acknowledged (8.7.7).
func (b *Bridge) tcnTimerExpired() {
	if b.isRootBridge() {
		return
	}
	b.transmitTCN()
	b.tcnTimer.start(b.now.Add(b.timers.hello))
}

// topologyChangeTimerExpired: the root stops announcing the change (8.7.8).
func (b *Bridge) topologyChangeTimerExpired() {
	b.tcDetected = false
	b.setTopologyChange(false)
}

// holdTimerExpired sends the config BPDU the hold timer deferred (8.7.9).
func (b *Bridge) holdTimerExpired(p *port) {
	if p.configPending {
		b.transmitConfig(p)
	}
}
