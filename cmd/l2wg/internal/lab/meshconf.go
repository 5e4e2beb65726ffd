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

func (v *validator) validateMesh(t *Topology) {
	switch t.Mesh.Protocol {
	case "", ProtocolShortestPath, ProtocolSpanningTree, ProtocolRSTP, ProtocolSTP:
	default:
		v.fail("mesh.protocol", "%q: must be %s, %s, %s or %s", t.Mesh.Protocol, ProtocolShortestPath, ProtocolSpanningTree, ProtocolRSTP, ProtocolSTP)
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
// "shortest-path" only when the topology asks for it and l2wg has the key;
// otherwise the spanning tree's protocol ("rstp" unless [stp] or [mesh]
// says "stp").
func (p *Plan) MeshProtocol() string {
	t := p.Topo
	if t.Mesh.Protocol == ProtocolShortestPath && MeshProtocolKnown() {
		return ProtocolShortestPath
	}
	if t.Mesh.Protocol == ProtocolSTP || (t.Mesh.Protocol != ProtocolRSTP && t.STP != nil && t.STP.Protocol == ProtocolSTP) {
		return ProtocolSTP
	}
	return ProtocolRSTP
}

// meshNotes sets the mesh protocol of a node file. With [mesh] protocol
// in l2wg, "shortest-path" and "spanning-tree" go there; "rstp" and "stp"
// are the spanning tree with that [stp] protocol. Without it,
// "shortest-path" leaves a note that the spanning tree runs instead.
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
	}
	if stpOn && f.STP.Protocol == "" {
		f.STP.Protocol = proto
	}
	return nil
}
