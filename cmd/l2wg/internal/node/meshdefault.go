package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
)

// The default protocol and a host bridge that runs kernel STP. A node whose
// node.toml leaves [mesh] protocol to the default runs the shortest-path
// mesh, whose TAP speaks no 802.1D: joined to a host bridge that runs
// kernel STP (stp_state 1 or 2) it would be invisible to that bridge's tree,
// and a loop through the bridge's LAN would go unseen. Such a node runs the
// spanning tree instead, as it did before the default changed, and says so
// with the fix; a protocol written in node.toml is taken as written (the
// mesh's own edge towards kernel STP is its business). The same rule runs
// at start and at reload, so a reload sees no change of protocol where the
// file has none.

// bridgeSTPState reads a Linux bridge's stp_state (0 off, 1 kernel, 2 user
// space); a variable for tests.
var bridgeSTPState = func(bridge string) (int, error) {
	b, err := os.ReadFile(filepath.Join("/sys/class/net", bridge, "bridge", "stp_state"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// meshProtocolKey is node.toml's key of the mesh protocol.
const meshProtocolKey = "mesh.protocol"

// resolveMeshDefault returns cfg, or, when cfg runs the shortest-path mesh
// only by default and its [tap] bridge runs STP or a peer has a VLAN
// filter (the mesh has one port for every peer: config refuses the two
// together when the protocol is written), a copy that runs the spanning
// tree, with the warning to log.
func resolveMeshDefault(cfg *config.Config) (*config.Config, string) {
	if cfg.MeshProtocol != config.MeshShortestPath || cfg.Line(meshProtocolKey) != 0 {
		return cfg, ""
	}
	file := filepath.Base(cfg.File)
	var why, fix string
	for i, p := range cfg.Peers {
		if config.PeerFiltersVLANs(p) {
			at := fmt.Sprintf("peer[%d].vlans", i+1)
			if l := cfg.Line(at); l != 0 {
				file = fmt.Sprintf("%s:%d", file, l)
			}
			why = fmt.Sprintf("peer %s carries VLANs %s, a filter the default %q has no port per peer for", p.Name, p.VLANs, config.MeshShortestPath)
			fix = "or filter at [tap] vlans for the mesh"
			break
		}
	}
	if why == "" && cfg.TAPBridge != "" {
		state, err := bridgeSTPState(cfg.TAPBridge)
		if err != nil || state == 0 {
			return cfg, "" // no such bridge yet (the TAP attach reports it), or STP off
		}
		why = fmt.Sprintf("host bridge %q runs STP (stp_state %d), which the default %q does not speak yet", cfg.TAPBridge, state, config.MeshShortestPath)
		fix = "or turn STP off on " + cfg.TAPBridge + " for the mesh"
	}
	if why == "" {
		return cfg, ""
	}
	c := *cfg
	c.MeshProtocol = config.MeshSpanningTree
	return &c, fmt.Sprintf("%s: %s not set: %s: running %q instead; set [mesh] protocol = %q to keep it, %s",
		file, meshProtocolKey, why, config.MeshSpanningTree, config.MeshRSTP, fix)
}
