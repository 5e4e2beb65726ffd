// Package capture copies the frames the switch passes through its ports, at
// tap points that cost one atomic load per batch while no capture runs, and
// streams them over the control socket to `l2wg capture`, which writes a
// pcap file.
package capture

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/tunnel"
)

// `l2wg capture` writes the frames the switch passes through a port (or every
// port) to a pcap file, as the switch sees them: whole frames, before the
// tunnel fragments them and after it reassembles them, GSO superframes from
// the TAP as one frame (as tcpdump shows them on a host with offloads).
//
// The daemon taps every port at two points: where frames enter the switch
// (Input) and where they leave it (the port's WriteFrames). A tap point loads
// one atomic pointer per batch; only while a capture runs does it copy
// frames, into a bounded queue that drops (and counts) what the reader cannot
// keep up with, so the data path never waits for a capture. The control
// request "capture <json>" starts a session and streams its frames back;
// the client writes the pcap file, without libpcap.

// Dir is which way a frame crosses the port.
type Dir uint8

const (
	In    Dir = 1 << iota // entering the switch through the port
	Out                   // leaving the switch through the port
	InOut = In | Out
)

func ParseDir(s string) (Dir, error) {
	switch s {
	case "in":
		return In, nil
	case "out":
		return Out, nil
	case "inout", "both", "":
		return InOut, nil
	}
	return 0, fmt.Errorf("direction %q: want in, out or inout", s)
}

func (d Dir) String() string {
	switch d {
	case In:
		return "in"
	case Out:
		return "out"
	case InOut:
		return "inout"
	}
	return "none"
}

// Capture bounds and buffers.
const (
	DefaultCount    = 1000
	DefaultDuration = 60 * time.Second
	DefaultSnaplen  = 262144 // tcpdump's default; a 64 KiB superframe fits
	queueFrames     = 4096
	queueBytes      = 16 << 20 // copied frame bytes waiting for the reader
	writeTimeout    = 10 * time.Second
)

// Taps are the tap points of one node: the sessions they copy frames
// to. The zero value has no session.
type Taps struct {
	mu       sync.Mutex                 // serialises start and stop
	sessions atomic.Pointer[[]*session] // nil while no capture runs
}

// wrap returns sw with tap points: on Input, and around every port added
// through it. The TAP reader and the tunnel use the switch through it.
func (c *Taps) Wrap(sw tunnel.Switch) Switch { return Switch{sw, c} }

// Switch is a switch behind tap points (see Taps.wrap).
type Switch struct {
	tunnel.Switch
	taps *Taps
}

// AddPort adds p behind a tap point for the frames leaving by it.
func (c Switch) AddPort(name string, p bridge.Port) bridge.PortID {
	cp := &port{taps: c.taps, dev: p}
	id := c.Switch.AddPort(name, cp)
	cp.id.Store(uint32(id))
	return id
}

// Input taps the frames entering on in, then hands them to the switch.
func (c Switch) Input(in bridge.PortID, frames []bridge.Frame) {
	if ss := c.taps.sessions.Load(); ss != nil {
		offer(*ss, in, In, frames)
	}
	c.Switch.Input(in, frames)
}

// port is a port behind a tap point for the frames leaving by it.
type port struct {
	taps *Taps
	dev  bridge.Port
	id   atomic.Uint32 // bridge.PortID, set once AddPort returns
}

func (p *port) WriteFrames(frames []bridge.Frame) {
	if ss := p.taps.sessions.Load(); ss != nil {
		offer(*ss, bridge.PortID(p.id.Load()), Out, frames)
	}
	p.dev.WriteFrames(frames)
}

var _ bridge.Port = (*port)(nil)
var _ tunnel.Switch = Switch{}

// offer gives frames crossing port in direction dir to every session
// that wants them.
func offer(ss []*session, port bridge.PortID, dir Dir, frames []bridge.Frame) {
	var at time.Time
	for _, s := range ss {
		if s.dir&dir == 0 || (s.port != 0 && s.port != port) {
			continue
		}
		if at.IsZero() {
			at = time.Now()
		}
		s.offer(at, port, dir, frames)
	}
}

func (c *Taps) start(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ss []*session
	if old := c.sessions.Load(); old != nil {
		ss = slices.Clone(*old)
	}
	ss = append(ss, s)
	c.sessions.Store(&ss)
}

func (c *Taps) stop(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.sessions.Load()
	if old == nil {
		return
	}
	ss := slices.DeleteFunc(slices.Clone(*old), func(x *session) bool { return x == s })
	if len(ss) == 0 {
		c.sessions.Store(nil)
		return
	}
	c.sessions.Store(&ss)
}

// Frame is one frame copied at a tap point.
type Frame struct {
	At   time.Time
	Port bridge.PortID
	Dir  Dir
	Len  int    // the frame's length
	Data []byte // its first snaplen bytes
}

// session is one running capture.
type session struct {
	port    bridge.PortID // 0: every port
	dir     Dir
	snaplen int
	limit   int64 // frames to take; 0: no limit

	frames  chan Frame
	taken   atomic.Int64  // frames queued so far
	queued  atomic.Int64  // bytes queued and not yet written
	dropped atomic.Uint64 // frames lost because the queue was full
}

func newSession(port bridge.PortID, dir Dir, snaplen, limit int) *session {
	return &session{port: port, dir: dir, snaplen: snaplen, limit: int64(limit), frames: make(chan Frame, queueFrames)}
}

// offer copies frames into the queue, dropping (and counting) what does not
// fit; it never blocks.
func (s *session) offer(at time.Time, port bridge.PortID, dir Dir, frames []bridge.Frame) {
	for i := range frames {
		if s.limit > 0 && s.taken.Load() >= s.limit {
			return
		}
		head, data := frames[i].Head, frames[i].Data // as the port sends them: head, then data
		n := min(len(head)+len(data), s.snaplen)
		if s.queued.Load()+int64(n) > queueBytes {
			s.dropped.Add(1)
			continue
		}
		b := make([]byte, n)
		copy(b[copy(b, head):], data)
		f := Frame{At: at, Port: port, Dir: dir, Len: len(head) + len(data), Data: b}
		select {
		case s.frames <- f:
			s.taken.Add(1)
			s.queued.Add(int64(n))
		default:
			s.dropped.Add(1)
		}
	}
}
