package lab

import (
	"fmt"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
)

// MeshSettings are the [mesh] table of a topology: which protocol the sites
// run among themselves. "shortest-path" and "spanning-tree" go to every
// site's node.toml as [mesh] protocol when l2wg has that key (config.Keys
// has "mesh.protocol"; without it a "shortest-path" topology runs the
// spanning tree of its [stp] table); "rstp" and "stp" are the spanning tree
// with that [stp] protocol.
type MeshSettings struct {
	Protocol string `toml:"protocol"` // "shortest-path", "rstp", "stp"; empty: l2wg's default
}

// Mesh protocols.
const (
	ProtocolShortestPath = "shortest-path"
	ProtocolRSTP         = "rstp"
	ProtocolSTP          = "stp"
	// ProtocolSpanningTree is the spanning tree of the topology's [stp]
	// table, in l2wg's [mesh] protocol spelling.
	ProtocolSpanningTree = "spanning-tree"
)

// meshProtocolKey is the node.toml key of the mesh protocol.
const meshProtocolKey = "mesh.protocol"

// MeshProtocolKnown reports whether this l2wg's config has [mesh] protocol.
// The tests of the mesh's bounds skip until it does.
func MeshProtocolKnown() bool {
	for _, k := range config.Keys {
		if k.Path == meshProtocolKey {
			return true
		}
	}
	return false
}

// DefaultMeshProtocol is this l2wg's default [mesh] protocol (config.Keys),
// the one a topology without [mesh] protocol runs; "" without the key.
func DefaultMeshProtocol() string {
	for _, k := range config.Keys {
		if k.Path == meshProtocolKey {
			s, _ := k.Default.(string)
			return s
		}
	}
	return ""
}

// validMeshProtocol reports whether p is a [mesh] protocol of a topology.
func validMeshProtocol(p string) error {
	switch p {
	case "", ProtocolShortestPath, ProtocolSpanningTree, ProtocolRSTP, ProtocolSTP:
		return nil
	}
	return fmt.Errorf("%q: must be %s, %s, %s or %s", p, ProtocolShortestPath, ProtocolSpanningTree, ProtocolRSTP, ProtocolSTP)
}

// SetMeshProtocol makes the sites of t run protocol p, whatever its [mesh]
// table says (lab run -protocol): the same network under another protocol,
// for comparison.
func (t *Topology) SetMeshProtocol(p string) error {
	if p == "" {
		return fmt.Errorf("%q: name a protocol", p)
	}
	if err := validMeshProtocol(p); err != nil {
		return err
	}
	t.Mesh.Protocol = p
	return nil
}

func (v *validator) validateMesh(t *Topology) {
	if err := validMeshProtocol(t.Mesh.Protocol); err != nil {
		v.fail("mesh.protocol", "%v", err)
	}
	lans := make(map[string]int)
	for i, s := range t.Sites {
		if s.LAN == "" {
			continue
		}
		if !nameRE.MatchString(s.LAN) || len(s.LAN) > maxNameLen {
			v.fail(fmt.Sprintf("site[%d].lan", i+1), "%q: a LAN name is 1 to %d of a-z, 0-9, '-', '_'", s.LAN, maxNameLen)
		}
		lans[s.LAN]++
	}
	for i, s := range t.Sites {
		if s.LAN != "" && lans[s.LAN] < 2 {
			v.fail(fmt.Sprintf("site[%d].lan", i+1), "%q: no other site is on this LAN", s.LAN)
		}
	}
}

// MeshProtocol is the protocol the sites of the plan actually run:
// "shortest-path" only when the topology asks for it (or says nothing and
// it is l2wg's default) and l2wg has the key; otherwise the spanning
// tree's protocol ("rstp" unless [stp] or [mesh] says "stp").
func (p *Plan) MeshProtocol() string {
	t := p.Topo
	proto := t.Mesh.Protocol
	if proto == "" {
		proto = DefaultMeshProtocol()
	}
	if proto == ProtocolShortestPath && MeshProtocolKnown() {
		return ProtocolShortestPath
	}
	if proto == ProtocolSTP || (proto != ProtocolRSTP && t.STP != nil && t.STP.Protocol == ProtocolSTP) {
		return ProtocolSTP
	}
	return ProtocolRSTP
}

// meshNotes sets the mesh protocol of a node file. With [mesh] protocol
// in l2wg, the topology's protocol goes there (none: l2wg's default), and
// "rstp" or "stp" there overrides the [stp] protocol of the topology.
// Without the key, "rstp" and "stp" are the spanning tree with that [stp]
// protocol, and "shortest-path" leaves a note that the spanning tree runs
// instead.
func (p *Plan) meshNotes(f *config.File, stpOn bool) []string {
	proto := p.Topo.Mesh.Protocol
	switch {
	case proto == "":
		return nil
	case proto == ProtocolShortestPath || proto == ProtocolSpanningTree:
		if MeshProtocolKnown() {
			f.Mesh.Protocol = proto
			return nil
		}
		if proto == ProtocolShortestPath {
			return []string{"[mesh] protocol = \"shortest-path\" left out: this l2wg has no [mesh] protocol; the spanning tree runs"}
		}
		return nil
	case MeshProtocolKnown():
		f.Mesh.Protocol = proto
		f.STP.Protocol = "" // [mesh] protocol names the tree's protocol
		return nil
	}
	if stpOn && f.STP.Protocol == "" {
		f.STP.Protocol = proto
	}
	return nil
}
