package mesh

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"
)

// The appointed forwarder of a LAN shared by several nodes' TAPs (TRILL's
// appointed forwarder, RFC 6325 4.2.4 and RFC 6439, simplified; EVPN's
// designated forwarder). Two hypervisors of one site whose VM bridges share
// a LAN are both mesh nodes: if both passed frames between that LAN and the
// mesh, a broadcast from the LAN would enter the mesh twice and a frame from
// the mesh would come back into it through the other node: a loop. So the
// nodes of a LAN say hello on it and elect one forwarder; the others keep
// their TAP blocked (they still send and hear hellos).
//
// Rules (Forwarder):
//   - A node that starts, or whose TAP comes up again (Restart), listens for
//     the inhibition time (3 hello intervals by default) before it may
//     forward: by then it has heard every live node of the LAN, so joining
//     never makes a loop.
//   - A node heard forwards while its hellos keep coming: a node is gone
//     when nothing was heard from it for 3 of its own hello intervals (the
//     interval is in every hello).
//   - With no forwarder heard, the node with the lowest ID among the live
//     nodes heard (itself included) forwards, once its inhibition is over.
//     When the forwarder goes, the next so takes over one hold time after
//     its last hello: the gap is the hold time, 300 ms by default.
//   - An incumbent forwarder is never preempted: a node that comes back
//     with a lower ID hears the incumbent's flag during its inhibition and
//     stays blocked. A change of forwarder always has a gap (the old one has
//     gone, or yielded, before the new one forwards), so there is never an
//     overlap; preempting a live forwarder would make a gap for nothing.
//   - While some node of the LAN has adjacencies in the mesh
//     (SetConnected), only such nodes are candidates, and a forwarder
//     without any yields: a standby whose tunnels are not up yet does not
//     take over a LAN it could not carry.
//   - Silence counts only while this node listens: when the caller was not
//     running for more than a hello interval (Tick is due at least every
//     interval; a process starved of CPU misses that), the hellos sent
//     meanwhile may still wait in the TAP's queue, so every node heard is
//     given one more interval from the end of the stall before it is gone.
//     Without that, a standby that wakes from a stall expires a live
//     forwarder before reading its queued hellos and forwards beside it:
//     an overlap. A real death during a stall costs at most one interval
//     more (counted in Stalls).
//   - If two forwarders hear each other (a split LAN healed, or hellos lost
//     for a whole hold time), the higher ID yields at once: both forward at
//     most until the first hello crosses, one hello interval.
//
// Hellos are Ethernet frames to the private group address HelloGroup,
// which a Linux bridge (with or without STP) forwards like multicast data:
//
//	dst HelloGroup, src the TAP's MAC, 802.3 length (not an EtherType),
//	LLC AA AA 03, SNAP OUI 02 6C 32 (l2wg's private prefix, not
//	registered), PID 00 01; then version 1, flags (bit 0: "I am the
//	appointed forwarder", bit 1: "I have mesh adjacencies"), hello interval in ms (2 bytes), node ID (4),
//	sequence (4), all big-endian; padded to 60 bytes.
//
// An 802.3 length with LLC/SNAP is what 802.1D BPDUs and CDP use: no host
// stack demultiplexes it as a protocol. The sequence counts hellos (for
// captures and the count of lost ones); it decides nothing, so a restarted
// node needs no memory of it.

// HelloGroup is the destination of appointed-forwarder hellos: next to
// bridge/spanning's PrivateGroup (…:00), distinct from it, so that each
// protocol's frames reach only its handler.
var HelloGroup = [6]byte{0x03, 0x6c, 0x32, 0x77, 0x67, 0x01}

// Hello defaults.
const (
	DefaultHelloInterval = 100 * time.Millisecond
	helloHoldFactor      = 3 // hellos missed before a node is gone; also the inhibition, in intervals
	helloVersion         = 1
	helloFlagForwarder   = 1
	helloFlagConnected   = 2
	helloFrameLen        = 60 // the Ethernet minimum, without the FCS
	helloLLCLen          = 8  // LLC AA AA 03 and SNAP OUI, PID
	helloBodyLen         = 12
	helloHeaderLen       = 14 // dst, src, length
	// a hello's own interval is believed within these bounds
	minHelloInterval = 10 * time.Millisecond
	maxHelloInterval = 10 * time.Second
)

var helloLLC = [helloLLCLen]byte{0xaa, 0xaa, 0x03, 0x02, 0x6c, 0x32, 0x00, 0x01}

// HelloMsg is a decoded hello.
type HelloMsg struct {
	Node      NodeID
	Forwarder bool          // the sender is the appointed forwarder
	Connected bool          // the sender has adjacencies in the mesh
	Interval  time.Duration // the sender's hello interval
	Seq       uint32
}

// Errors of DecodeHello.
var (
	ErrHelloShort   = errors.New("hello: too short")
	ErrHelloFormat  = errors.New("hello: not an appointed-forwarder hello")
	ErrHelloVersion = errors.New("hello: unknown version")
	ErrHelloField   = errors.New("hello: field out of range")
)

// AppendHello appends the Ethernet frame of h from source MAC src to b.
func AppendHello(b []byte, src [6]byte, h HelloMsg) []byte {
	start := len(b)
	b = append(b, HelloGroup[:]...)
	b = append(b, src[:]...)
	b = binary.BigEndian.AppendUint16(b, helloLLCLen+helloBodyLen)
	b = append(b, helloLLC[:]...)
	var flags byte
	if h.Forwarder {
		flags |= helloFlagForwarder
	}
	if h.Connected {
		flags |= helloFlagConnected
	}
	b = append(b, helloVersion, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(min(h.Interval.Milliseconds(), 0xffff)))
	b = binary.BigEndian.AppendUint32(b, uint32(h.Node))
	b = binary.BigEndian.AppendUint32(b, h.Seq)
	for len(b)-start < helloFrameLen {
		b = append(b, 0)
	}
	return b
}

// DecodeHello decodes a hello frame (Ethernet header included). Unknown
// flags are ignored; a later version with a longer body decodes as long as
// it keeps this one's fields in front.
func DecodeHello(frame []byte) (HelloMsg, error) {
	if len(frame) < helloHeaderLen+helloLLCLen+helloBodyLen {
		return HelloMsg{}, ErrHelloShort
	}
	if [6]byte(frame[:6]) != HelloGroup || [helloLLCLen]byte(frame[helloHeaderLen:helloHeaderLen+helloLLCLen]) != helloLLC {
		return HelloMsg{}, ErrHelloFormat
	}
	if n := int(binary.BigEndian.Uint16(frame[12:])); n < helloLLCLen+helloBodyLen || n > len(frame)-helloHeaderLen {
		return HelloMsg{}, ErrHelloFormat
	}
	body := frame[helloHeaderLen+helloLLCLen:]
	if body[0] != helloVersion {
		return HelloMsg{}, ErrHelloVersion
	}
	h := HelloMsg{
		Forwarder: body[1]&helloFlagForwarder != 0,
		Connected: body[1]&helloFlagConnected != 0,
		Interval:  time.Duration(binary.BigEndian.Uint16(body[2:])) * time.Millisecond,
		Node:      NodeID(binary.BigEndian.Uint32(body[4:])),
		Seq:       binary.BigEndian.Uint32(body[8:]),
	}
	if h.Node == 0 || h.Interval < minHelloInterval || h.Interval > maxHelloInterval {
		return HelloMsg{}, ErrHelloField
	}
	return h, nil
}

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	Self NodeID  // this node's ID
	MAC  [6]byte // the source address of its hellos (the TAP's)
	// HelloInterval is how often Hello is to be sent; 0 means
	// DefaultHelloInterval.
	HelloInterval time.Duration
	// Inhibition is how long a node listens before it may forward; 0 means
	// 3 hello intervals.
	Inhibition time.Duration
}

// Forwarder is one node's appointed-forwarder state for the LAN behind its
// TAP (see the rules above). Pure: time is passed in, nothing is sent by
// itself. The caller serializes calls, sends Hello's frame on the TAP every
// HelloInterval, hands received hellos to Receive, calls Tick at least every
// interval, and lets frames pass between the TAP and the mesh only while
// Forwarding.
type Forwarder struct {
	cfg        ForwarderConfig
	listenFrom time.Time // start of the inhibition
	lastCall   time.Time // the latest time passed in: a stall is a longer gap
	forwarding bool
	connected  bool
	seq        uint32
	lans       map[NodeID]lanNode
	stats      ForwarderStats
}

type lanNode struct {
	last      time.Time
	hold      time.Duration
	forwarder bool
	connected bool
	seq       uint32
}

// ForwarderStats counts a Forwarder's events.
type ForwarderStats struct {
	HellosIn, HellosOut uint64
	Malformed           uint64 // hellos DecodeHello refused
	Own                 uint64 // hellos with this node's ID (heard back: a loop, or an ID collision)
	Lost                uint64 // gaps in the sequences heard
	Yields              uint64 // forwarding given up to a lower-ID forwarder
	Takeovers           uint64 // times this node became the forwarder
	Stalls              uint64 // calls more than an interval after the previous one
}

// NewForwarder returns a node's Forwarder, listening from now.
func NewForwarder(cfg ForwarderConfig, now time.Time) *Forwarder {
	if cfg.HelloInterval <= 0 {
		cfg.HelloInterval = DefaultHelloInterval
	}
	cfg.HelloInterval = min(max(cfg.HelloInterval, minHelloInterval), maxHelloInterval)
	if cfg.Inhibition <= 0 {
		cfg.Inhibition = helloHoldFactor * cfg.HelloInterval
	}
	return &Forwarder{cfg: cfg, listenFrom: now, lans: map[NodeID]lanNode{}}
}

// HelloInterval is the interval the caller is to send hellos at.
func (f *Forwarder) HelloInterval() time.Duration { return f.cfg.HelloInterval }

// Restart makes the node stop forwarding and listen again for the
// inhibition time, as at start: for a TAP that went down and came up.
func (f *Forwarder) Restart(now time.Time) {
	f.forwarding = false
	f.listenFrom = now
	clear(f.lans)
}

// SetConnected tells whether this node has adjacencies in the mesh. While
// some node of the LAN is connected, only connected nodes are candidates,
// and a forwarder that is not yields: a node cut off from the mesh cannot
// carry the LAN's traffic. With none connected (the mesh not up yet) the
// rules apply to all. Takes effect at the next Tick.
func (f *Forwarder) SetConnected(on bool) { f.connected = on }

// Hello returns the frame to send on the TAP now (its state at now).
func (f *Forwarder) Hello(now time.Time) []byte {
	f.Tick(now)
	f.seq++
	f.stats.HellosOut++
	return AppendHello(make([]byte, 0, helloFrameLen), f.cfg.MAC,
		HelloMsg{Node: f.cfg.Self, Forwarder: f.forwarding, Connected: f.connected, Interval: f.cfg.HelloInterval, Seq: f.seq})
}

// Receive takes a hello frame heard on the TAP. A malformed one is counted
// and returned as an error; it changes nothing.
func (f *Forwarder) Receive(frame []byte, now time.Time) error {
	h, err := DecodeHello(frame)
	if err != nil {
		f.stats.Malformed++
		return err
	}
	f.stats.HellosIn++
	if h.Node == f.cfg.Self {
		f.stats.Own++
		return nil
	}
	f.noteCall(now) // before the hello counts: the others heard during a stall get their grace
	if old, ok := f.lans[h.Node]; ok && h.Seq-old.seq > 1 && h.Seq-old.seq < 1<<31 {
		f.stats.Lost += uint64(h.Seq - old.seq - 1)
	}
	f.lans[h.Node] = lanNode{last: now, hold: helloHoldFactor * h.Interval, forwarder: h.Forwarder, connected: h.Connected, seq: h.Seq}
	f.Tick(now)
	return nil
}

// Tick forgets the nodes gone silent and applies the rules at now.
func (f *Forwarder) Tick(now time.Time) {
	f.noteCall(now)
	otherForwarder, anyConnected := NodeID(0), f.connected
	for id, n := range f.lans {
		if !now.Before(n.last.Add(n.hold)) {
			delete(f.lans, id)
			continue
		}
		if n.forwarder && (otherForwarder == 0 || id < otherForwarder) {
			otherForwarder = id
		}
		anyConnected = anyConnected || n.connected
	}
	lowest := NodeID(0) // the lowest candidate
	if f.connected || !anyConnected {
		lowest = f.cfg.Self
	}
	for id, n := range f.lans {
		if (n.connected || !anyConnected) && (lowest == 0 || id < lowest) {
			lowest = id
		}
	}
	switch {
	case f.forwarding:
		if otherForwarder != 0 && otherForwarder < f.cfg.Self || !f.connected && anyConnected {
			f.forwarding = false
			f.stats.Yields++
		}
	case otherForwarder == 0 && lowest == f.cfg.Self && now.Sub(f.listenFrom) >= f.cfg.Inhibition:
		f.forwarding = true
		f.stats.Takeovers++
	}
}

// noteCall records a call at now; after a stall (more than an interval
// since the previous call) every node heard is live until at least one
// interval from now.
func (f *Forwarder) noteCall(now time.Time) {
	if !f.lastCall.IsZero() && now.Sub(f.lastCall) > f.cfg.HelloInterval {
		f.stats.Stalls++
		grace := now.Add(f.cfg.HelloInterval)
		for id, n := range f.lans {
			if n.last.Add(n.hold).Before(grace) {
				n.last = grace.Add(-n.hold)
				f.lans[id] = n
			}
		}
	}
	if now.After(f.lastCall) {
		f.lastCall = now
	}
}

// Listening reports whether the node is still in its inhibition at now.
func (f *Forwarder) Listening(now time.Time) bool {
	return now.Sub(f.listenFrom) < f.cfg.Inhibition
}

// Forwarding reports whether this node is the LAN's appointed forwarder
// (as of the last call).
func (f *Forwarder) Forwarding() bool { return f.forwarding }

// LANNode is a node heard on the LAN.
type LANNode struct {
	Node      NodeID
	Forwarder bool
}

// LAN returns the nodes heard on the LAN and still live, this one
// included, by ID.
func (f *Forwarder) LAN() []LANNode {
	out := []LANNode{{Node: f.cfg.Self, Forwarder: f.forwarding}}
	for id, n := range f.lans {
		out = append(out, LANNode{Node: id, Forwarder: n.forwarder})
	}
	slices.SortFunc(out, func(a, b LANNode) int {
		switch {
		case a.Node < b.Node:
			return -1
		case a.Node > b.Node:
			return 1
		}
		return 0
	})
	return out
}

// Stats returns the counters.
func (f *Forwarder) Stats() ForwarderStats { return f.stats }
