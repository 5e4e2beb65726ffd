package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
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

// captureDir is which way a frame crosses the port.
type captureDir uint8

const (
	captureIn    captureDir = 1 << iota // entering the switch through the port
	captureOut                          // leaving the switch through the port
	captureInOut = captureIn | captureOut
)

func parseCaptureDir(s string) (captureDir, error) {
	switch s {
	case "in":
		return captureIn, nil
	case "out":
		return captureOut, nil
	case "inout", "both", "":
		return captureInOut, nil
	}
	return 0, fmt.Errorf("direction %q: want in, out or inout", s)
}

func (d captureDir) String() string {
	switch d {
	case captureIn:
		return "in"
	case captureOut:
		return "out"
	case captureInOut:
		return "inout"
	}
	return "none"
}

// Capture bounds and buffers.
const (
	defaultCaptureCount    = 1000
	defaultCaptureDuration = 60 * time.Second
	defaultSnaplen         = 262144 // tcpdump's default; a 64 KiB superframe fits
	captureQueueFrames     = 4096
	captureQueueBytes      = 16 << 20 // copied frame bytes waiting for the reader
	captureWriteTimeout    = 10 * time.Second
)

// captureTaps are the tap points of one node: the sessions they copy frames
// to. The zero value has no session.
type captureTaps struct {
	mu       sync.Mutex                        // serialises start and stop
	sessions atomic.Pointer[[]*captureSession] // nil while no capture runs
}

// wrap returns sw with tap points: on Input, and around every port added
// through it. The TAP reader and the tunnel use the switch through it.
func (c *captureTaps) wrap(sw tunnel.Switch) captureSwitch { return captureSwitch{sw, c} }

// captureSwitch is a switch behind tap points (see captureTaps.wrap).
type captureSwitch struct {
	tunnel.Switch
	taps *captureTaps
}

// AddPort adds p behind a tap point for the frames leaving by it.
func (c captureSwitch) AddPort(name string, p bridge.Port) bridge.PortID {
	cp := &capturePort{taps: c.taps, dev: p}
	id := c.Switch.AddPort(name, cp)
	cp.id.Store(uint32(id))
	return id
}

// Input taps the frames entering on in, then hands them to the switch.
func (c captureSwitch) Input(in bridge.PortID, frames []bridge.Frame) {
	if ss := c.taps.sessions.Load(); ss != nil {
		offerCapture(*ss, in, captureIn, frames)
	}
	c.Switch.Input(in, frames)
}

// capturePort is a port behind a tap point for the frames leaving by it.
type capturePort struct {
	taps *captureTaps
	dev  bridge.Port
	id   atomic.Uint32 // bridge.PortID, set once AddPort returns
}

func (p *capturePort) WriteFrames(frames []bridge.Frame) {
	if ss := p.taps.sessions.Load(); ss != nil {
		offerCapture(*ss, bridge.PortID(p.id.Load()), captureOut, frames)
	}
	p.dev.WriteFrames(frames)
}

var _ bridge.Port = (*capturePort)(nil)
var _ tunnel.Switch = captureSwitch{}

// offerCapture gives frames crossing port in direction dir to every session
// that wants them.
func offerCapture(ss []*captureSession, port bridge.PortID, dir captureDir, frames []bridge.Frame) {
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

func (c *captureTaps) start(s *captureSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ss []*captureSession
	if old := c.sessions.Load(); old != nil {
		ss = slices.Clone(*old)
	}
	ss = append(ss, s)
	c.sessions.Store(&ss)
}

func (c *captureTaps) stop(s *captureSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.sessions.Load()
	if old == nil {
		return
	}
	ss := slices.DeleteFunc(slices.Clone(*old), func(x *captureSession) bool { return x == s })
	if len(ss) == 0 {
		c.sessions.Store(nil)
		return
	}
	c.sessions.Store(&ss)
}

// capturedFrame is one frame copied at a tap point.
type capturedFrame struct {
	At   time.Time
	Port bridge.PortID
	Dir  captureDir
	Len  int    // the frame's length
	Data []byte // its first snaplen bytes
}

// captureSession is one running capture.
type captureSession struct {
	port    bridge.PortID // 0: every port
	dir     captureDir
	snaplen int
	limit   int64 // frames to take; 0: no limit

	frames  chan capturedFrame
	taken   atomic.Int64  // frames queued so far
	queued  atomic.Int64  // bytes queued and not yet written
	dropped atomic.Uint64 // frames lost because the queue was full
}

func newCaptureSession(port bridge.PortID, dir captureDir, snaplen, limit int) *captureSession {
	return &captureSession{port: port, dir: dir, snaplen: snaplen, limit: int64(limit), frames: make(chan capturedFrame, captureQueueFrames)}
}

// offer copies frames into the queue, dropping (and counting) what does not
// fit; it never blocks.
func (s *captureSession) offer(at time.Time, port bridge.PortID, dir captureDir, frames []bridge.Frame) {
	for i := range frames {
		if s.limit > 0 && s.taken.Load() >= s.limit {
			return
		}
		data := frames[i].Data
		n := min(len(data), s.snaplen)
		if s.queued.Load()+int64(n) > captureQueueBytes {
			s.dropped.Add(1)
			continue
		}
		f := capturedFrame{At: at, Port: port, Dir: dir, Len: len(data), Data: bytes.Clone(data[:n])}
		select {
		case s.frames <- f:
			s.taken.Add(1)
			s.queued.Add(int64(n))
		default:
			s.dropped.Add(1)
		}
	}
}

// The capture stream on the control socket, after the request line
// "capture <captureRequest as JSON>": one line of captureHeader as JSON, then
// records: 'F' and a frame (captureFrameHeader bytes, then the data), and a
// last 'E' record with a 4-byte length and a captureSummary as JSON. All
// integers are big-endian.

type captureRequest struct {
	Port      string        `json:"port,omitempty"` // "": every port
	Direction string        `json:"direction"`      // in, out, inout
	Count     int           `json:"count"`          // 0: no bound
	Duration  time.Duration `json:"duration"`       // 0: no bound
	Snaplen   int           `json:"snaplen"`
}

type captureHeader struct {
	Error string              `json:"error,omitempty"`
	Ports []captureHeaderPort `json:"ports,omitempty"` // the ports captured
}

type captureHeaderPort struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type captureSummary struct {
	Frames  uint64 `json:"frames"`
	Dropped uint64 `json:"dropped"` // lost because the reader fell behind
	Reason  string `json:"reason"`  // count, duration, shutdown
}

// captureFrameHeader: time (unix ns, 8), port (2), direction (1), frame
// length (4), captured length (4).
const captureFrameHeader = 8 + 2 + 1 + 4 + 4

// maxCaptureData bounds the captured length a client accepts in a record.
const maxCaptureData = 1 << 20

// serveCapture runs a capture for a control connection until its bound, the
// client's hangup or the node's shutdown.
func (n *node) serveCapture(c net.Conn, arg string) {
	c.SetDeadline(time.Time{})
	enc := json.NewEncoder(c)
	var req captureRequest
	if err := json.Unmarshal([]byte(arg), &req); err != nil {
		enc.Encode(captureHeader{Error: fmt.Sprintf("bad capture request: %v", err)})
		return
	}
	s, ports, err := n.newCapture(req)
	if err != nil {
		enc.Encode(captureHeader{Error: err.Error()})
		return
	}
	n.capture.start(s)
	defer n.capture.stop(s)
	c.SetWriteDeadline(time.Now().Add(captureWriteTimeout))
	if err := enc.Encode(captureHeader{Ports: ports}); err != nil {
		return
	}
	n.log.Info("capture started", "port", orAll(req.Port), "direction", s.dir.String(), "count", req.Count, "duration", req.Duration)

	// The client half-closes its side to stop early (Ctrl-C): it still reads
	// the summary.
	gone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(gone)
	}()
	var timeout <-chan time.Time
	if req.Duration > 0 {
		t := time.NewTimer(req.Duration)
		defer t.Stop()
		timeout = t.C
	}
	w := bufio.NewWriterSize(c, 64<<10)
	sum := captureSummary{Reason: "count"}
loop:
	for req.Count == 0 || sum.Frames < uint64(req.Count) {
		select {
		case f := <-s.frames:
			s.queued.Add(-int64(len(f.Data)))
			c.SetWriteDeadline(time.Now().Add(captureWriteTimeout))
			if err := writeCaptureFrame(w, f); err != nil {
				n.log.Info("capture ended: client gone", "frames", sum.Frames, "err", err)
				return
			}
			sum.Frames++
			if len(s.frames) == 0 {
				if err := w.Flush(); err != nil {
					n.log.Info("capture ended: client gone", "frames", sum.Frames, "err", err)
					return
				}
			}
		case <-timeout:
			sum.Reason = "duration"
			break loop
		case <-n.done:
			sum.Reason = "shutdown"
			break loop
		case <-gone:
			sum.Reason = "stopped"
			break loop
		}
	}
	n.capture.stop(s)
	sum.Dropped = s.dropped.Load()
	c.SetWriteDeadline(time.Now().Add(captureWriteTimeout))
	writeCaptureEnd(w, sum)
	w.Flush()
	n.log.Info("capture ended", "frames", sum.Frames, "dropped", sum.Dropped, "reason", sum.Reason)
}

// newCapture checks a request and makes its session; ports are the ports it
// captures.
func (n *node) newCapture(req captureRequest) (*captureSession, []captureHeaderPort, error) {
	dir, err := parseCaptureDir(req.Direction)
	if err != nil {
		return nil, nil, err
	}
	if req.Count < 0 || req.Duration < 0 || (req.Count == 0 && req.Duration == 0) {
		return nil, nil, errors.New("a capture needs a positive count or duration")
	}
	snaplen := req.Snaplen
	if snaplen <= 0 || snaplen > defaultSnaplen {
		snaplen = defaultSnaplen
	}
	var id bridge.PortID
	var ports []captureHeaderPort
	var names []string
	for _, p := range n.br.Ports() {
		names = append(names, p.Name)
		if req.Port == "" || req.Port == p.Name {
			ports = append(ports, captureHeaderPort{ID: int(p.ID), Name: p.Name})
			if req.Port != "" && id == 0 {
				id = p.ID
			}
		}
	}
	if req.Port != "" && id == 0 {
		return nil, nil, fmt.Errorf("no port %q (ports: %s)", req.Port, strings.Join(names, ", "))
	}
	if id != 0 {
		ports = ports[:1]
	}
	return newCaptureSession(id, dir, snaplen, req.Count), ports, nil
}

func orAll(port string) string {
	if port == "" {
		return "*"
	}
	return port
}

func writeCaptureFrame(w io.Writer, f capturedFrame) error {
	var h [1 + captureFrameHeader]byte
	h[0] = 'F'
	binary.BigEndian.PutUint64(h[1:], uint64(f.At.UnixNano()))
	binary.BigEndian.PutUint16(h[9:], uint16(f.Port))
	h[11] = byte(f.Dir)
	binary.BigEndian.PutUint32(h[12:], uint32(f.Len))
	binary.BigEndian.PutUint32(h[16:], uint32(len(f.Data)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(f.Data)
	return err
}

func writeCaptureEnd(w io.Writer, sum captureSummary) error {
	js, _ := json.Marshal(sum)
	var h [5]byte
	h[0] = 'E'
	binary.BigEndian.PutUint32(h[1:], uint32(len(js)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(js)
	return err
}

// readCaptureRecord reads one record: a frame, or (end true) the summary.
func readCaptureRecord(r *bufio.Reader) (f capturedFrame, sum captureSummary, end bool, err error) {
	kind, err := r.ReadByte()
	if err != nil {
		return f, sum, false, err
	}
	switch kind {
	case 'F':
		var h [captureFrameHeader]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return f, sum, false, noEOF(err)
		}
		f.At = time.Unix(0, int64(binary.BigEndian.Uint64(h[0:])))
		f.Port = bridge.PortID(binary.BigEndian.Uint16(h[8:]))
		f.Dir = captureDir(h[10])
		f.Len = int(binary.BigEndian.Uint32(h[11:]))
		capLen := binary.BigEndian.Uint32(h[15:])
		if capLen > maxCaptureData || int(capLen) > f.Len {
			return f, sum, false, fmt.Errorf("capture stream: bad frame record (%d of %d bytes)", capLen, f.Len)
		}
		f.Data = make([]byte, capLen)
		if _, err := io.ReadFull(r, f.Data); err != nil {
			return f, sum, false, noEOF(err)
		}
		return f, sum, false, nil
	case 'E':
		var h [4]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return f, sum, false, noEOF(err)
		}
		size := binary.BigEndian.Uint32(h[:])
		if size > 4096 {
			return f, sum, false, errors.New("capture stream: summary too long")
		}
		js := make([]byte, size)
		if _, err := io.ReadFull(r, js); err != nil {
			return f, sum, false, noEOF(err)
		}
		if err := json.Unmarshal(js, &sum); err != nil {
			return f, sum, false, fmt.Errorf("capture stream: summary: %w", err)
		}
		return f, sum, true, nil
	}
	return f, sum, false, fmt.Errorf("capture stream: unknown record %q", kind)
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
