package lab

import (
	"fmt"
	"strconv"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
)

// MeshSettings are the [mesh] table of a topology: which protocol the sites
// run among themselves. The lab passes protocol through to every site's
// node.toml as [mesh] protocol once l2wg has that key (config.Keys has
// "mesh.protocol"); until then a "shortest-path" topology runs the spanning
// tree of its [stp] table, and "rstp" or "stp" become [stp] protocol.
type MeshSettings struct {
	Protocol string `toml:"protocol"` // "shortest-path", "rstp", "stp"; empty: l2wg's default
}

// Mesh protocols.
const (
	ProtocolShortestPath = "shortest-path"
	ProtocolRSTP         = "rstp"
	ProtocolSTP          = "stp"
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
	case "", ProtocolShortestPath, ProtocolRSTP, ProtocolSTP:
	default:
		v.fail("mesh.protocol", "%q: must be %s, %s or %s", t.Mesh.Protocol, ProtocolShortestPath, ProtocolRSTP, ProtocolSTP)
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

// meshTable is the [mesh] table to append to a node.toml, or "" when the
// topology names no protocol or l2wg has no [mesh] protocol. It is text,
// not a field of config.File, so that the lab needs no change the day the
// key appears.
func (p *Plan) meshTable() string {
	if p.Topo.Mesh.Protocol == "" || !MeshProtocolKnown() {
		return ""
	}
	return "\n[mesh]\nprotocol = " + strconv.Quote(p.Topo.Mesh.Protocol) + "\n"
}

// meshNotes adjusts a node file for a [mesh] protocol that l2wg does not
// know yet: "rstp" and "stp" become [stp] protocol; "shortest-path" leaves
// a note that the spanning tree runs instead.
func (p *Plan) meshNotes(f *config.File, stpOn bool) []string {
	proto := p.Topo.Mesh.Protocol
	if proto == "" || MeshProtocolKnown() {
		return nil
	}
	if proto == ProtocolShortestPath {
		return []string{"[mesh] protocol = \"shortest-path\" left out: this l2wg has no [mesh] protocol; the spanning tree runs"}
	}
	if stpOn && f.STP.Protocol == "" {
		f.STP.Protocol = proto
	}
	return nil
}
