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
// only by default and its [tap] bridge runs STP, a copy that runs the
// spanning tree, with the warning to log.
func resolveMeshDefault(cfg *config.Config) (*config.Config, string) {
	if cfg.MeshProtocol != config.MeshShortestPath || cfg.Line(meshProtocolKey) != 0 || cfg.TAPBridge == "" {
		return cfg, ""
	}
	state, err := bridgeSTPState(cfg.TAPBridge)
	if err != nil || state == 0 {
		return cfg, "" // no such bridge yet (the TAP attach reports it), or STP off
	}
	c := *cfg
	c.MeshProtocol = config.MeshSpanningTree
	return &c, fmt.Sprintf("%s: %s not set: host bridge %q runs STP (stp_state %d), which the default %q does not speak yet: running %q instead; "+
		"set [mesh] protocol = %q to keep it, or turn STP off on %s for the mesh",
		filepath.Base(cfg.File), meshProtocolKey, cfg.TAPBridge, state, config.MeshShortestPath, config.MeshSpanningTree, config.MeshRSTP, cfg.TAPBridge)
}
