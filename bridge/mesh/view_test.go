package mesh

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata golden files")

// viewLab is four nodes: 0–1 (10), 1–2 (10), 0–2 (30), 2–3 (5), and a link
// 3→0 that only node 3 reports (its tunnel came up on one end only).
func viewLab(t *testing.T) *lab {
	l := newLab(t, 4, 1)
	for _, c := range [][3]int{{0, 1, 10}, {1, 2, 10}, {0, 2, 30}, {2, 3, 5}} {
		l.up(l.connect(c[0], c[1], uint32(c[2]), 1))
	}
	one := l.connect(3, 0, 7, 1)
	lk := l.links[one]
	l.apply(3, l.nodes[3].m.AdjacencyUp(lk.pa, l.nodes[0].key, lk.cost, l.now))
	l.settle(10 * time.Second)
	return l
}

func TestViewPathsAndLinks(t *testing.T) {
	l := viewLab(t)
	id := func(i int) NodeID { return l.nodes[i].id }
	v := l.nodes[0].m.View(l.now)
	if v.UsedKnown {
		t.Error("View computed Used")
	}
	v.ComputeUsed()
	if v.Self != id(0) || !v.Synced || len(v.Nodes) != 4 {
		t.Fatalf("view: self %v synced %v, %d nodes", v.Self, v.Synced, len(v.Nodes))
	}
	if !slices.IsSortedFunc(v.Nodes, func(a, b NodeView) int { return cmpID(a.ID, b.ID) }) {
		t.Error("nodes not ascending")
	}
	want := map[int]struct {
		path []int
		cost uint64
	}{0: {[]int{0}, 0}, 1: {[]int{0, 1}, 10}, 2: {[]int{0, 1, 2}, 20}, 3: {[]int{0, 1, 2, 3}, 25}}
	for i, w := range want {
		n, ok := v.Node(id(i))
		if !ok || !n.Reachable {
			t.Fatalf("node %d: %+v, %v", i, n, ok)
		}
		var path []NodeID
		for _, j := range w.path {
			path = append(path, id(j))
		}
		if !slices.Equal(n.Path, path) || n.Hops != len(path)-1 || n.Cost != w.cost {
			t.Errorf("node %d: path %v hops %d cost %d; want %v, %d, %d", i, n.Path, n.Hops, n.Cost, path, len(path)-1, w.cost)
		}
		wantNext := Port(0)
		if i != 0 {
			wantNext = l.links[0].pa // 0's port of the link 0–1
		}
		if n.NextHop != wantNext {
			t.Errorf("node %d: next hop %d; want %d", i, n.NextHop, wantNext)
		}
		if n.Key != l.nodes[i].key || n.Seq == 0 || n.Lifetime <= 0 || n.Lifetime > DefaultLifetime {
			t.Errorf("node %d: key %x seq %d lifetime %v", i, n.Key[:3], n.Seq, n.Lifetime)
		}
	}
	type lk struct {
		cost      uint32
		confirmed bool
		inUse     bool
		used      bool
	}
	links := map[[2]NodeID]LinkView{}
	for _, lv := range v.Links {
		if lv.A >= lv.B {
			t.Errorf("link %v–%v not ordered", lv.A, lv.B)
		}
		links[[2]NodeID{lv.A, lv.B}] = lv
	}
	if len(links) != 5 {
		t.Fatalf("%d links; want 5: %+v", len(links), v.Links)
	}
	for _, c := range []struct {
		a, b int
		want lk
	}{
		{0, 1, lk{10, true, true, true}}, {1, 2, lk{10, true, true, true}}, {2, 3, lk{5, true, true, true}},
		{0, 2, lk{30, true, false, false}}, {3, 0, lk{0, false, false, false}},
	} {
		lv := links[pair(id(c.a), id(c.b))]
		got := lk{lv.Cost, lv.Confirmed, lv.InUse, lv.Used}
		if got != c.want {
			t.Errorf("link %d–%d: %+v; want %+v", c.a, c.b, got, c.want)
		}
	}
	// The one-sided link: only 3 lists it, at 7.
	lv := links[pair(id(0), id(3))]
	if c3, c0 := lv.CostAB, lv.CostBA; lv.A == id(0) {
		c3, c0 = lv.CostBA, lv.CostAB
		if c3 != 7 || c0 != 0 {
			t.Errorf("one-sided link costs 3:%d 0:%d; want 7, 0", c3, c0)
		}
	} else if c3 != 7 || c0 != 0 {
		t.Errorf("one-sided link costs 3:%d 0:%d; want 7, 0", c3, c0)
	}
	if v.Stats.Nodes != 4 || v.Stats.Edges != 4 || v.Stats.SPFRuns == 0 {
		t.Errorf("stats %+v", v.Stats)
	}
}

// After 1–2 is cut, 0 reaches 2 and 3 over 0–2; the cut link is listed
// by no one and gone; a killed node is unreachable and its links to the
// living unconfirmed.
func TestViewFollowsChanges(t *testing.T) {
	l := viewLab(t)
	id := func(i int) NodeID { return l.nodes[i].id }
	l.cut(1)
	l.settle(10 * time.Second)
	v := l.nodes[0].m.View(l.now)
	n3, _ := v.Node(id(3))
	if !slices.Equal(n3.Path, []NodeID{id(0), id(2), id(3)}) || n3.Cost != 35 {
		t.Errorf("after the cut: path to 3 %v cost %d", n3.Path, n3.Cost)
	}
	for _, lv := range v.Links {
		if lv.A == min(id(1), id(2)) && lv.B == max(id(1), id(2)) {
			t.Errorf("the cut link is still listed: %+v", lv)
		}
		if k := pair(id(0), id(2)); lv.A == k[0] && lv.B == k[1] && !lv.InUse {
			t.Error("0–2 not in use after the cut")
		}
	}
	l.kill(3)
	l.settle(10 * time.Second)
	v = l.nodes[0].m.View(l.now)
	n3, ok := v.Node(id(3))
	if !ok || n3.Reachable || n3.Path != nil || n3.Hops != 0 || n3.NextHop != 0 {
		t.Errorf("killed node: %+v, %v", n3, ok)
	}
	for _, lv := range v.Links {
		if (lv.A == id(3) || lv.B == id(3)) && (lv.Confirmed || lv.InUse) {
			t.Errorf("link of the killed node: %+v", lv)
		}
	}
}

// On a ring of four at equal costs, self's tree leaves out one link to
// the opposite node, which that node's own tree takes: every link is used,
// three are in use by self.
func TestViewUsedByOthers(t *testing.T) {
	l := newLab(t, 4, 2)
	for i := range 4 {
		l.up(l.connect(i, (i+1)%4, 10, 1))
	}
	l.settle(10 * time.Second)
	v := l.nodes[0].m.View(l.now)
	v.ComputeUsed()
	if !v.UsedKnown || len(v.Links) != 4 {
		t.Fatalf("used known %v, %d links", v.UsedKnown, len(v.Links))
	}
	inUse := 0
	for _, lv := range v.Links {
		if !lv.Used || !lv.Confirmed {
			t.Errorf("link %v–%v: %+v; want used", lv.A, lv.B, lv)
		}
		if lv.InUse {
			inUse++
		}
	}
	if inUse != 3 {
		t.Errorf("%d links on self's tree; want 3", inUse)
	}
	big := View{Nodes: make([]NodeView, MaxViewUsedNodes+1)}
	if big.ComputeUsed(); big.UsedKnown {
		t.Error("ComputeUsed ran above MaxViewUsedNodes")
	}
	var b bytes.Buffer
	v.WriteDOT(&b)
	if n := strings.Count(b.String(), "color=grey"); n != 0 {
		t.Errorf("%d grey (idle) links on a ring where every link is used:\n%s", n, b.String())
	}
}

func TestViewDOTGolden(t *testing.T) {
	l := viewLab(t)
	v := l.nodes[0].m.View(l.now)
	v.ComputeUsed()
	v.Names = map[NodeID]string{l.nodes[0].id: "rho", l.nodes[1].id: `bob "uk"`, l.nodes[2].id: "epsilon"}
	var a, b bytes.Buffer
	if err := v.WriteDOT(&a); err != nil {
		t.Fatal(err)
	}
	// Deterministic: a second view of another moment writes the same.
	l.run(time.Second)
	v2 := l.nodes[0].m.View(l.now)
	v2.ComputeUsed()
	v2.Names = v.Names
	if err := v2.WriteDOT(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("two views of one mesh differ:\n%s\n%s", a.Bytes(), b.Bytes())
	}
	golden := filepath.Join("testdata", "view.dot")
	if *updateGolden {
		if err := os.WriteFile(golden, a.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), want) {
		t.Errorf("DOT differs from %s (-update rewrites it):\n%s", golden, a.Bytes())
	}
	// Structure: 4 node statements, 5 edges, 3 bold, 1 dashed edge.
	s := a.String()
	if n := strings.Count(s, " -- "); n != 5 {
		t.Errorf("%d edges; want 5", n)
	}
	if n := strings.Count(s, "style=bold"); n != 3 {
		t.Errorf("%d bold edges; want 3", n)
	}
	if n := strings.Count(s, `style=dashed, color=grey]`); n != 1 {
		t.Errorf("%d dashed edges; want 1", n)
	}
	if n := strings.Count(s, `[label="30", color=grey, fontcolor=grey]`); n != 1 {
		t.Errorf("the link on no tree is not grey")
	}
	if !strings.Contains(s, `label="bob \"uk\"\n`) {
		t.Error("a quote in a name is not escaped")
	}
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Log("graphviz not installed: the DOT is not rendered")
		return
	}
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin = bytes.NewReader(a.Bytes())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("dot -Tsvg: %v\n%s", err, stderr.Bytes())
	}
	for _, want := range []string{"<svg", ">rho<", ">epsilon<", ">30<"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the SVG has no %q", want)
		}
	}
}

// BenchmarkUsedLinks: what View adds to a read of the machine (under the
// node's lock): one SPF per node, for n up to MaxViewUsedNodes.
func BenchmarkUsedLinks(b *testing.B) {
	for _, n := range []int{10, 128, 256} {
		rng := rand.New(rand.NewPCG(uint64(n), 2))
		recs := randomRecords(rng, n, 3+rng.IntN(6), []uint32{1, 10, 20, 40, 100})
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				usedLinks(recs)
			}
		})
	}
}
