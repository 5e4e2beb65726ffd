package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

// meshNode answers the control socket as a node of a three-node mesh:
// self (rho), bob next to it, 3 behind bob, and a link to 3 that only self
// lists. mesh false: a spanning-tree node.
type meshNode struct{ mesh bool }

func (n meshNode) Status(bool) control.Status {
	return control.Status{Interface: control.Interface{TAP: "l2wg-mesh"}}
}
func (meshNode) Reload() control.ReloadResult { return control.ReloadResult{OK: true} }
func (meshNode) Capture(net.Conn, string)     {}
func (n meshNode) MeshView() (control.MeshSource, bool) {
	if !n.mesh {
		return control.MeshSource{}, false
	}
	return control.MeshSource{
		View: mesh.View{
			Self: 0x11, Synced: true, UsedKnown: true,
			Nodes: []mesh.NodeView{
				{ID: 0x11, Reachable: true, Path: []mesh.NodeID{0x11}, Lifetime: time.Minute},
				{ID: 0x22, Reachable: true, Hops: 1, Cost: 10, NextHop: 1, Path: []mesh.NodeID{0x11, 0x22}},
				{ID: 0x33, Reachable: true, Hops: 2, Cost: 15, NextHop: 1, Path: []mesh.NodeID{0x11, 0x22, 0x33}},
			},
			Links: []mesh.LinkView{
				{A: 0x11, B: 0x22, CostAB: 10, CostBA: 10, Cost: 10, Confirmed: true, InUse: true, Used: true},
				{A: 0x11, B: 0x33, CostAB: 40},
				{A: 0x22, B: 0x33, CostAB: 5, CostBA: 5, Cost: 5, Confirmed: true, InUse: false, Used: true},
			},
			Stats: mesh.Stats{Nodes: 3, Edges: 2, SPFRuns: 12, Computes: 4, RecordsIn: 21, RecordsOut: 9, LastSPFTime: 250 * time.Microsecond},
			Names: map[mesh.NodeID]string{0x11: "rho", 0x22: "bob"},
		},
		Port: bridge.MeshStats{HopLimit: 3},
		RTT:  map[mesh.NodeID]time.Duration{0x22: 2 * time.Millisecond},
		// bob shares rho's LAN and forwards for it
		SPFTime: 1500 * time.Microsecond, SPFTimed: true,
		LAN: &control.MeshLAN{Forwarder: 0x22, Nodes: []mesh.NodeID{0x11, 0x22}},
	}, true
}

func serveShow(t *testing.T, h control.Handler) string {
	t.Helper()
	tap := fmt.Sprintf("show-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	l, err := control.Listen(tap)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); control.Serve(l, h) }()
	t.Cleanup(func() { l.Close(); <-done })
	return tap
}

func showOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr strings.Builder
	err := run(append([]string{"show"}, args...), nil, &stdout, &stderr)
	return stdout.String(), err
}

func TestShowMesh(t *testing.T) {
	tap := serveShow(t, meshNode{mesh: true})
	out, err := showOut(t, "-i", tap, "mesh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"mesh: rho (00000011), synced, 3 nodes in the database, 3 reachable, 2 links",
		"00000033  2     15    rho > bob > 00000033",
		"rho  bob       10    10          10          yes        yes        2.00ms",
		"rho  00000033  -     40          -           no         no         -",
		"bob  00000033  5     5           5           yes        by others  -",
		"12 runs in 4 computations, 1.500ms (latest 250.0µs)",
		"lan: appointed forwarder bob (00000022); on it: rho (self), bob*",
		"hop-limit=3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show mesh has no %q:\n%s", want, out)
		}
	}
	dot, err := showOut(t, "-i", tap, "mesh", "--dot")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dot, "graph mesh {") || strings.Count(dot, "style=bold") != 1 || strings.Count(dot, " -- ") != 3 ||
		!strings.Contains(dot, `"00000011" [label="rho\n00000011", peripheries=2]`) {
		t.Errorf("show mesh --dot:\n%s", dot)
	}
	js, err := showOut(t, "-i", tap, "--json", "mesh")
	if err != nil {
		t.Fatal(err)
	}
	var m control.Mesh
	if err := json.Unmarshal([]byte(js), &m); err != nil || len(m.Links) != 3 || m.Links[0].RTT != 2 ||
		m.LAN == nil || m.LAN.Forwarder != "00000022" || m.LAN.Forwarding || len(m.LAN.Nodes) != 2 ||
		m.Stats.SPFSeconds == nil || *m.Stats.SPFSeconds != 0.0015 {
		t.Errorf("show --json mesh: %v\n%s", err, js)
	}
	status, err := showOut(t, "-i", tap)
	if err != nil || !strings.Contains(status, "mesh: rho (00000011)") {
		t.Errorf("show: %v, no mesh section:\n%s", err, status)
	}
}

func TestShowMeshWithoutMesh(t *testing.T) {
	tap := serveShow(t, meshNode{})
	if _, err := showOut(t, "-i", tap, "mesh"); err == nil || err.Error() != control.NoMesh {
		t.Errorf("show mesh on a spanning-tree node: %v", err)
	}
	if out, err := showOut(t, "-i", tap); err != nil || strings.Contains(out, "mesh:") {
		t.Errorf("show on a spanning-tree node: %v\n%s", err, out)
	}
	if _, err := showOut(t, "-i", tap, "--dot"); err == nil {
		t.Error("show --dot without mesh succeeds")
	}
}
