package control

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/bridge/mesh"
)

// meshHandler is a node with a mesh of three: self 1, 2 next to it, 3
// behind 2; 1–3 listed by 1 only.
type meshHandler struct {
	countingHandler
	has bool
}

func testView() mesh.View {
	return mesh.View{
		Self: 1, Synced: true, UsedKnown: true,
		Nodes: []mesh.NodeView{
			{ID: 1, Key: mesh.Key{1}, Seq: 7 << 32, Lifetime: 600 * time.Second, Reachable: true, Path: []mesh.NodeID{1}},
			{ID: 2, Key: mesh.Key{2}, Seq: 8 << 32, Lifetime: 500 * time.Second, Reachable: true, Hops: 1, Cost: 10, NextHop: 4, Path: []mesh.NodeID{1, 2}},
			{ID: 3, Key: mesh.Key{3}, Seq: 9 << 32, Lifetime: 400 * time.Second, Reachable: true, Hops: 2, Cost: 15, NextHop: 4, Path: []mesh.NodeID{1, 2, 3}},
		},
		Links: []mesh.LinkView{
			{A: 1, B: 2, CostAB: 10, CostBA: 8, Cost: 10, Confirmed: true, InUse: true, Used: true},
			{A: 1, B: 3, CostAB: 40},
			{A: 2, B: 3, CostAB: 5, CostBA: 5, Cost: 5, Confirmed: true, InUse: true},
		},
		Stats: mesh.Stats{Nodes: 3, Edges: 2, SPFRuns: 12, Computes: 4, RecordsIn: 21, RecordsOut: 9, AbsurdSeq: 2},
		Names: map[mesh.NodeID]string{2: "bob"},
	}
}

func (h *meshHandler) MeshView() (MeshSource, bool) {
	if !h.has {
		return MeshSource{}, false
	}
	return MeshSource{
		View:    testView(),
		Port:    bridge.MeshStats{Sent: 100, HopLimit: 3, ReversePath: 5, Addresses: 2},
		RTT:     map[mesh.NodeID]time.Duration{2: 1500 * time.Microsecond, 3: 9 * time.Millisecond},
		SPFTime: 250 * time.Microsecond, SPFTimed: true,
	}, true
}

func serveHandler(t *testing.T, h Handler) string {
	t.Helper()
	tap := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l, err := Listen(tap)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); Serve(l, h) }()
	t.Cleanup(func() { l.Close(); <-done })
	return Addr(tap)
}

func TestMeshServed(t *testing.T) {
	addr := serveHandler(t, &meshHandler{has: true})
	m, err := QueryMesh(addr)
	if err != nil {
		t.Fatal(err)
	}
	if m.Self != "00000001" || !m.Synced || len(m.Nodes) != 3 || len(m.Links) != 3 {
		t.Fatalf("mesh %+v", m)
	}
	n3 := m.Nodes[2]
	if n3.NextHop != "00000002" || strings.Join(n3.Path, ",") != "00000001,00000002,00000003" || n3.Hops != 2 || n3.Cost != 15 {
		t.Errorf("node 3: %+v", n3)
	}
	if m.Nodes[1].Name != "bob" || m.Nodes[0].NextHop != "" || m.Nodes[0].Lifetime != 600 {
		t.Errorf("nodes: %+v", m.Nodes)
	}
	// RTT only on this node's own links, and only where measured.
	if m.Links[0].RTT != 1.5 || m.Links[1].RTT != 9 || m.Links[2].RTT != 0 {
		t.Errorf("link RTTs %v %v %v; want 1.5 9 0", m.Links[0].RTT, m.Links[1].RTT, m.Links[2].RTT)
	}
	s := m.Stats
	if s.DatabaseNodes != 3 || s.SPFRuns != 12 || s.FloodsIn != 21 || s.FloodsOut != 9 || s.SPFSeconds == nil || *s.SPFSeconds != 250e-6 ||
		!reflect.DeepEqual(s.ControlDrops, map[string]uint64{"absurd-seq": 2}) ||
		!reflect.DeepEqual(s.FrameDrops, map[string]uint64{"hop-limit": 3, "reverse-path": 5}) || s.Addresses != 2 {
		t.Errorf("stats %+v", s)
	}
	st, err := Query(addr, "status")
	if err != nil || st.Mesh == nil || st.Mesh.Stats.SPFRuns != 12 {
		t.Errorf("status: mesh %+v, %v", st.Mesh, err)
	}
}

func TestNoMesh(t *testing.T) {
	for name, h := range map[string]Handler{"not a MeshViewer": new(countingHandler), "no mesh": &meshHandler{}} {
		addr := serveHandler(t, h)
		if m, err := QueryMesh(addr); err == nil || err.Error() != NoMesh {
			t.Errorf("%s: QueryMesh %+v, %v; want %q", name, m, err, NoMesh)
		}
		if st, err := Query(addr, "status"); err != nil || st.Mesh != nil {
			t.Errorf("%s: status mesh %+v, %v; want none", name, st.Mesh, err)
		}
	}
	if MeshOf(nil) != nil {
		t.Error("MeshOf(nil) is not nil")
	}
}

// What the client draws is what the node viewed: the JSON round trip keeps
// every field WriteDOT reads.
func TestMeshViewRoundTrip(t *testing.T) {
	want := testView()
	got, err := NewMesh(MeshSource{View: want}).View()
	if err != nil {
		t.Fatal(err)
	}
	want.Stats = mesh.Stats{}
	for i := range want.Nodes {
		want.Nodes[i].NextHop = 0 // a port of the node: not in the JSON
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if NewMesh(MeshSource{View: want}).Stats.SPFSeconds != nil {
		t.Error("an SPF time that was not measured is reported")
	}
	if _, err := (&Mesh{Self: "xyz"}).View(); err == nil {
		t.Error("a bad ID parses")
	}
}
