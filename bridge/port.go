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
	ID       PortID
	Name     string
	State    stp.PortState
	VLANs    VLANFilter // what the port carries (SetVLANFilter)
	Counters Counters
}

// port is one switch port. Everything the hot path reads is atomic.
type port struct {
	id      PortID
	name    string
	dev     Port
	state   atomic.Uint32              // stp.PortState
	filter  atomic.Pointer[macSet]     // source addresses denied on ingress
	vlans   atomic.Pointer[vlanFilter] // VLANs carried; nil: all. Set under Bridge.portsMu
	removed atomic.Bool                // set by RemovePort before its FDB flush
	storm   stormBucket
	stats   portCounters
}

func (p *port) portState() stp.PortState { return stp.PortState(p.state.Load()) }

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
	p := &port{id: id, name: name, dev: dev}
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
	if old := stp.PortState(p.state.Swap(uint32(s))); old != s {
		b.log.Info("port state", "port", p.name, "id", id, "state", s.String())
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
		infos = append(infos, PortInfo{ID: p.id, Name: p.name, State: p.portState(), VLANs: p.vlans.Load().public(), Counters: p.stats.load()})
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
