package node

import (
	"errors"
	"strings"
	"testing"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
)

// TestResolveMeshDefault: the shortest-path mesh by default over a host
// bridge with STP falls back to the spanning tree, with a warning naming
// the file, the key and the fix; a protocol written in node.toml, a bridge
// without STP, no bridge, or one not there yet change nothing.
func TestResolveMeshDefault(t *testing.T) {
	states := map[string]int{"br0": 1, "brx": 2, "bro": 0}
	old := bridgeSTPState
	bridgeSTPState = func(b string) (int, error) {
		s, ok := states[b]
		if !ok {
			return 0, errors.New("no such bridge")
		}
		return s, nil
	}
	t.Cleanup(func() { bridgeSTPState = old })
	cases := []struct {
		name     string
		protocol string // written in node.toml; "" leaves it out
		bridge   string
		byDef    string // the protocol the default gives (as if l2wg's default)
		want     string
		warn     bool
	}{
		{"default over kernel STP", "", "br0", config.MeshShortestPath, config.MeshSpanningTree, true},
		{"default over user-space STP", "", "brx", config.MeshShortestPath, config.MeshSpanningTree, true},
		{"default, STP off", "", "bro", config.MeshShortestPath, config.MeshShortestPath, false},
		{"default, bridge not there", "", "brnone", config.MeshShortestPath, config.MeshShortestPath, false},
		{"default, no bridge", "", "", config.MeshShortestPath, config.MeshShortestPath, false},
		{"written shortest-path", config.MeshShortestPath, "br0", "", config.MeshShortestPath, false},
		{"written rstp", config.MeshRSTP, "br0", "", config.MeshRSTP, false},
		{"default spanning tree", "", "br0", config.MeshSpanningTree, config.MeshSpanningTree, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := baseFile()
			f.TAP.Bridge = tc.bridge
			f.Mesh.Protocol = tc.protocol
			cfg := load(t, f)
			if tc.byDef != "" {
				cfg.MeshProtocol = tc.byDef // what l2wg's default would give
			}
			before := cfg.MeshProtocol
			got, warn := resolveMeshDefault(cfg)
			if got.MeshProtocol != tc.want {
				t.Errorf("protocol %q, want %q", got.MeshProtocol, tc.want)
			}
			if cfg.MeshProtocol != before {
				t.Errorf("the config passed in changed: %q", cfg.MeshProtocol)
			}
			if !tc.warn {
				if warn != "" {
					t.Errorf("warning %q, want none", warn)
				}
				return
			}
			for _, w := range []string{"node.toml: mesh.protocol not set", `host bridge "` + tc.bridge + `" runs STP`, `set [mesh] protocol = "rstp"`} {
				if !strings.Contains(warn, w) {
					t.Errorf("warning %q: want %q in it", warn, w)
				}
			}
		})
	}
}
