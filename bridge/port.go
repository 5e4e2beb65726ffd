package bridge

import (
	"sync/atomic"

	"github.com/l2wg/l2wg/stp"
)

// Port is what the switch needs of a port: a way to send frames out of it.
//
// WriteFrames sends frames out of the port. It must not modify the frames nor
// retain them or their Data after it returns: when a batch floods, every port
// is handed the same slice. It may be called concurrently from several
// goroutines (every port's reader calls Input), and shortly after RemovePort
// by an Input call already under way.
type Port interface {
	WriteFrames(frames []Frame)
}

// PortID names a port of one bridge. IDs start at 1; 0 is never a port.
type PortID uint16

// PortInfo is a snapshot of one port.
type PortInfo struct {
	ID    PortID
	Name  string
	State stp.PortState
	VLANs VLANFilter // what the port carries (SetVLANFilter)
	// Mismatch is the protocol heard from the peer of a peer port that
	// speaks another one than this node ("shortest-path"), while the
	// port carries no data for that reason; "" otherwise.
	Mismatch string
	Counters Counters
}

// port is one switch port. Everything the hot path reads is atomic.
type port struct {
	id      PortID
	name    string
	dev     Port
	peer    bool                       // a port to another switch (AddPeerPort)
	state   atomic.Uint32              // stp.PortState, | stateMismatch
	filter  atomic.Pointer[macSet]     // source addresses denied on ingress
	vlans   atomic.Pointer[vlanFilter] // VLANs carried; nil: all. Set under Bridge.portsMu
	removed atomic.Bool                // set by RemovePort before its FDB flush
	// the protocol heard from the peer while stateMismatch is set
	peerProto atomic.Pointer[string]
	storm     stormBucket
	stats     portCounters
}

// stateMismatch is the bit of port.state that takes a peer port out of the
// data path while its peer speaks another protocol (mismatch.go). The low
// byte stays the spanning tree's state.
const stateMismatch = 1 << 8

// portState is the port's spanning-tree state, as the tree set it.
func (p *port) portState() stp.PortState { return stp.PortState(p.state.Load()) }

// dataState is the state the data path obeys: the tree's, or Disabled
// while the peer speaks another protocol.
func (p *port) dataState() stp.PortState { return dataState(p.state.Load()) }

func dataState(v uint32) stp.PortState {
	if v&stateMismatch != 0 {
		return stp.Disabled
	}
	return stp.PortState(v)
}

// portTable is an immutable array of ports indexed by PortID (nil where there
// is none), replaced as a whole by AddPort and RemovePort.
type portTable struct {
	ports []*port
}

func (t *portTable) get(id PortID) *port {
	if int(id) < len(t.ports) {
		return t.ports[id]
	}
	return nil
}

// AddPort adds a port named name (used in logs and snapshots) and returns its
// ID, the lowest one free. The port starts in stp.Forwarding: with no spanning
// tree running, it switches at once. AddPort panics if all 65535 IDs are taken.
func (b *Bridge) AddPort(name string, dev Port) PortID {
	return b.AddPortInState(name, dev, stp.Forwarding)
}

// AddPortInState is AddPort with the port's first state: a port that the
// spanning tree will manage starts Disabled, so that it forwards nothing
// before the tree has decided.
func (b *Bridge) AddPortInState(name string, dev Port, state stp.PortState) PortID {
	return b.addPort(name, dev, state, false)
}

// AddPeerPort is AddPortInState for a port to another l2wg switch (a
// tunnel peer, in the spanning-tree modes): the switch watches what
// protocol the peer speaks, and a peer that speaks the shortest-path mesh
// gets no data from the port and sends none through it (mismatch.go).
func (b *Bridge) AddPeerPort(name string, dev Port, state stp.PortState) PortID {
	return b.addPort(name, dev, state, true)
}

func (b *Bridge) addPort(name string, dev Port, state stp.PortState, peer bool) PortID {
	b.portsMu.Lock()
	defer b.portsMu.Unlock()
	old := b.ports.Load().ports
	id := PortID(1)
	for int(id) < len(old) && old[id] != nil {
		id++
	}
	if id == 0 {
		panic("bridge: no free port ID")
	}
	p := &port{id: id, name: name, dev: dev, peer: peer}
	p.state.Store(uint32(state))
	ports := make([]*port, max(len(old), int(id)+1))
	copy(ports, old)
	ports[id] = p
	b.ports.Store(&portTable{ports: ports})
	b.log.Info("port added", "port", name, "id", id, "state", state.String())
	return id
}

// RemovePort removes a port and forgets the addresses learned on it. Later
// Input and Output calls on its ID are ignored until AddPort hands the ID out
// again. Input calls already under way may still write to the port.
func (b *Bridge) RemovePort(id PortID) {
	b.portsMu.Lock()
	defer b.portsMu.Unlock()
	old := b.ports.Load().ports
	p := (&portTable{ports: old}).get(id)
	if p == nil {
		return
	}
	ports := make([]*port, len(old))
	copy(ports, old)
	ports[id] = nil
	for len(ports) > 0 && ports[len(ports)-1] == nil {
		ports = ports[:len(ports)-1]
	}
	b.ports.Store(&portTable{ports: ports})
	// Mark before flushing: a learner in flight checks the mark under the
	// FDB write lock, so it either inserts before this flush or not at all.
	// portsMu is still held, so no new port can take the ID meanwhile.
	p.removed.Store(true)
	if p.vlans.Load() != nil {
		b.vlanFiltered.Add(-1)
	}
	b.fdb.flush(id)
	b.log.Info("port removed", "port", p.name, "id", id)
}

// SetPortState sets a port's 802.1D state. The port learns source addresses
// in stp.Learning and stp.Forwarding and forwards data frames only in
// stp.Forwarding; control frames reach the control handler in every state.
// Leaving Learning or Forwarding flushes nothing by itself (the spanning tree
// asks for flushes). A change is logged at info, as the kernel's "port 2(vorke)
// entered forwarding state".
func (b *Bridge) SetPortState(id PortID, s stp.PortState) {
	p := b.ports.Load().get(id)
	if p == nil {
		return
	}
	for {
		v := p.state.Load()
		if !p.state.CompareAndSwap(v, v&stateMismatch|uint32(s)) {
			continue
		}
		if stp.PortState(v) != s {
			b.log.Info("port state", "port", p.name, "id", id, "state", s.String())
		}
		return
	}
}

// PortState returns a port's state; stp.Disabled if there is no such port.
func (b *Bridge) PortState(id PortID) stp.PortState {
	p := b.ports.Load().get(id)
	if p == nil {
		return stp.Disabled
	}
	return p.portState()
}

// SetSourceFilter replaces, atomically, the set of source addresses that are
// dropped (and counted as DropFilteredSource) when they enter on the port: for
// example the host bridge's own address, to keep the hypervisor's stack off
// the VM segment. nil or empty removes the filter. The switch keeps a copy of
// deny. Control frames are not filtered (see the package documentation).
func (b *Bridge) SetSourceFilter(id PortID, deny []MAC) {
	p := b.ports.Load().get(id)
	if p == nil {
		return
	}
	p.filter.Store(newMACSet(deny))
}

// Output sends frames out of one port whatever its state, for example BPDUs
// from the spanning tree. It is ignored if there is no such port. The frames
// are the caller's again when Output returns.
func (b *Bridge) Output(out PortID, frames []Frame) {
	p := b.ports.Load().get(out)
	if p == nil || len(frames) == 0 {
		return
	}
	p.transmit(frames, frameBytes(frames))
}

// transmit writes frames to the port and counts them.
func (p *port) transmit(frames []Frame, bytes uint64) {
	p.dev.WriteFrames(frames)
	p.stats.txFrames.Add(uint64(len(frames)))
	p.stats.txBytes.Add(bytes)
}

func frameBytes(frames []Frame) uint64 {
	var n uint64
	for i := range frames {
		n += uint64(len(frames[i].Data))
	}
	return n
}

// Ports returns a snapshot of every port, by ID.
func (b *Bridge) Ports() []PortInfo {
	var infos []PortInfo
	for _, p := range b.ports.Load().ports {
		if p == nil {
			continue
		}
		info := PortInfo{ID: p.id, Name: p.name, State: p.portState(), VLANs: p.vlans.Load().public(), Counters: p.stats.load()}
		if proto := p.peerProto.Load(); proto != nil && p.state.Load()&stateMismatch != 0 {
			info.Mismatch = *proto
		}
		infos = append(infos, info)
	}
	return infos
}

// portName returns the name of a port, "" if there is none.
func (t *portTable) portName(id PortID) string {
	if p := t.get(id); p != nil {
		return p.name
	}
	return ""
}
