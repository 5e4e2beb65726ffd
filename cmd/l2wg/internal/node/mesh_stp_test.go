package node

import (
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/stp"
)

// TestMeshRootChoice: the virtual root is named for the lowest node of the
// graph; a lower node takes over at once; a root node that leaves the
// graph keeps the root for meshRootHold (a restart inside it changes
// nothing), then the next lowest has it.
func TestMeshRootChoice(t *testing.T) {
	const self mesh.NodeID = 0x50
	t0 := time.Unix(1_700_000_000, 0)
	type step struct {
		at      time.Duration
		nodes   []mesh.NodeID
		want    mesh.NodeID
		changed bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"alone, then the database", []step{
			{0, nil, self, true},
			{time.Second, []mesh.NodeID{0x20, 0x50, 0x70}, 0x20, true},
			{2 * time.Second, []mesh.NodeID{0x20, 0x50, 0x70}, 0x20, false},
		}},
		{"self lowest", []step{
			{0, []mesh.NodeID{0x50, 0x60}, self, true},
			{time.Second, []mesh.NodeID{0x50}, self, false},
		}},
		{"restart of the root inside the hold", []step{
			{0, []mesh.NodeID{0x20, 0x50}, 0x20, true},
			{time.Second, []mesh.NodeID{0x50}, 0x20, false},
			{50 * time.Second, []mesh.NodeID{0x50}, 0x20, false},
			{55 * time.Second, []mesh.NodeID{0x20, 0x50}, 0x20, false},
			// gone again: the hold counts from the new departure
			{56 * time.Second, []mesh.NodeID{0x50}, 0x20, false},
			{56*time.Second + meshRootHold - time.Millisecond, []mesh.NodeID{0x50}, 0x20, false},
			{56*time.Second + meshRootHold, []mesh.NodeID{0x50}, self, true},
		}},
		{"a lower node joins", []step{
			{0, []mesh.NodeID{0x20, 0x50}, 0x20, true},
			{time.Second, []mesh.NodeID{0x10, 0x20, 0x50}, 0x10, true},
		}},
		{"root gone, next lowest after the hold", []step{
			{0, []mesh.NodeID{0x20, 0x30, 0x50}, 0x20, true},
			{time.Second, []mesh.NodeID{0x30, 0x50}, 0x20, false},
			{time.Second + meshRootHold, []mesh.NodeID{0x30, 0x50}, 0x30, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c meshRootChoice
			for i, s := range tc.steps {
				got, changed := c.update(s.nodes, self, t0.Add(s.at))
				if got != s.want || changed != s.changed {
					t.Fatalf("step %d at %v with %v: %v changed %v, want %v changed %v", i, s.at, s.nodes, got, changed, s.want, s.changed)
				}
			}
		})
	}
}

// TestMeshRootIDs: the root's bridge ID carries the priority and the node
// ID (so an operator reads the node in `cat /sys/class/net/br0/bridge/root_id`);
// port IDs are valid 802.1D port IDs at the default priority.
func TestMeshRootIDs(t *testing.T) {
	if got := meshRootID(0x7000, 0x1a2b3c4d).String(); got != "7000.026c1a2b3c4d" {
		t.Errorf("root ID %s", got)
	}
	for _, id := range []mesh.NodeID{0, 1, 4094, 4095, 0xffffffff} {
		p := meshEdgePortID(id)
		if p.Priority() != stp.DefaultPortPriority || p.No() == 0 || p.No() > stp.MaxPortNo {
			t.Errorf("node %v: port ID %v", id, p)
		}
	}
	if meshEdgePortID(1) == meshEdgePortID(2) {
		t.Error("neighbouring node IDs share a port ID")
	}
}
