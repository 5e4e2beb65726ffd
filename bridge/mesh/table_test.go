package mesh

import (
	"cmp"
	"slices"
	"testing"
)

// fixture: A-B 1, B-C 1, A-C 5 (never on a shortest path), C-D 1, and a
// one-sided link D->E that E does not list (the two-way check drops it).
type fixture struct {
	ids  map[string]NodeID
	recs map[NodeID]*Record
}

func newFixture() *fixture {
	f := &fixture{ids: map[string]NodeID{}, recs: map[NodeID]*Record{}}
	for i, n := range []string{"A", "B", "C", "D", "E"} {
		k := labKey(100 + i)
		f.ids[n] = IDFromKey(k)
		f.recs[f.ids[n]] = &Record{Origin: k, Seq: 1, Lifetime: 60}
	}
	both := func(a, b string, c uint32) { f.oneWay(a, b, c); f.oneWay(b, a, c) }
	both("A", "B", 1)
	both("B", "C", 1)
	both("A", "C", 5)
	both("C", "D", 1)
	f.oneWay("D", "E", 1)
	for _, r := range f.recs {
		slices.SortFunc(r.Links, func(x, y Link) int { return cmp.Compare(x.Neighbour, y.Neighbour) })
	}
	return f
}

func (f *fixture) oneWay(a, b string, c uint32) {
	r := f.recs[f.ids[a]]
	r.Links = append(r.Links, Link{f.ids[b], c})
}

// table computes the table of node at, whose neighbours sit on the given
// ports.
func (f *fixture) table(at string, ports map[string]Port) *Table {
	pm := map[NodeID]Port{}
	for n, p := range ports {
		pm[f.ids[n]] = p
	}
	var sp spf
	t, _ := buildTable(buildGraph(f.recs), f.ids[at], pm, &sp)
	return t
}

func TestReversePathDecisions(t *testing.T) {
	f := newFixture()
	tabs := map[string]*Table{
		"A": f.table("A", map[string]Port{"B": 1, "C": 2}),
		"B": f.table("B", map[string]Port{"A": 1, "C": 2}),
		"C": f.table("C", map[string]Port{"A": 1, "B": 2, "D": 3}),
		"D": f.table("D", map[string]Port{"C": 1, "E": 2}),
	}
	for _, c := range []struct {
		name    string
		at      string
		ingress string
		from    Port
		accept  bool
	}{
		{"from A on the port towards A", "B", "A", 1, true},
		{"from A through C: not B's path to A", "B", "A", 2, false},
		{"from D through C", "B", "D", 2, true},
		{"from D on A's port: a loop", "B", "D", 1, false},
		{"C's next hop to A is B, not the direct link", "C", "A", 2, true},
		{"over the unused direct link A-C", "C", "A", 1, false},
		{"own frames coming back", "C", "C", 2, false},
		{"from a node only one side lists", "D", "E", 2, false},
		{"port 0", "B", "A", 0, false},
		{"unknown ingress", "B", "Z", 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, ok := f.ids[c.ingress]
			if !ok {
				id = 0xdeadbeef
			}
			if got := tabs[c.at].AcceptMulti(id, c.from); got != c.accept {
				t.Errorf("%s AcceptMulti(%s, port %d) = %v, want %v", c.at, c.ingress, c.from, got, c.accept)
			}
		})
	}
	for _, c := range []struct {
		name    string
		at      string
		ingress string
		want    []Port
	}{
		{"B relays A's frames to C only", "B", "A", []Port{2}},
		{"B relays D's frames to A", "B", "D", []Port{1}},
		{"B's own frames to both", "B", "B", []Port{1, 2}},
		{"B relays C's frames to A", "B", "C", []Port{1}},
		{"C relays A's frames to D (B gets them from A)", "C", "A", []Port{3}},
		{"C relays D's frames to B (A gets them from B)", "C", "D", []Port{2}},
		{"C's own frames: not to A, whose path to C is via B", "C", "C", []Port{2, 3}},
		{"A's own frames: to B only", "A", "A", []Port{1}},
		{"D is a leaf for A's frames", "D", "A", nil},
		{"D's own frames: to C, never to E (one-sided)", "D", "D", []Port{1}},
		{"unknown ingress", "C", "E", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := tabs[c.at].MultiTargets(f.ids[c.ingress])
			if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Errorf("%s MultiTargets(%s) = %v, want %v", c.at, c.ingress, got, c.want)
			}
		})
	}
	for _, c := range []struct {
		at, egress string
		port       Port
		ok         bool
	}{
		{"A", "C", 1, true}, // via B (2), not direct (5)
		{"A", "D", 1, true},
		{"C", "A", 2, true},
		{"D", "A", 1, true},
		{"D", "E", 0, false}, // one-sided link: not in the graph
		{"B", "B", 0, false}, // self
	} {
		p, limit, ok := tabs[c.at].NextHop(f.ids[c.egress])
		if p != c.port || ok != c.ok {
			t.Errorf("%s NextHop(%s) = %d %v, want %d %v", c.at, c.egress, p, ok, c.port, c.ok)
		}
		if ok && limit < 2 {
			t.Errorf("%s NextHop(%s) hop limit %d", c.at, c.egress, limit)
		}
	}
	if tabs["D"].Reachable(f.ids["E"]) {
		t.Error("E is reachable through a link only D lists")
	}
	if got := tabs["A"].Path(f.ids["D"]); !slices.Equal(got, []NodeID{f.ids["A"], f.ids["B"], f.ids["C"], f.ids["D"]}) {
		t.Errorf("path A to D: %v", got)
	}
}

// TestTableLookupsAllocateNothing pins the data path's lookups.
func TestTableLookupsAllocateNothing(t *testing.T) {
	f := newFixture()
	tab := f.table("C", map[string]Port{"A": 1, "B": 2, "D": 3})
	a, d := f.ids["A"], f.ids["D"]
	n := testing.AllocsPerRun(1000, func() {
		tab.NextHop(d)
		tab.AcceptMulti(a, 2)
		tab.MultiTargets(a)
		tab.MultiHopLimit()
	})
	if n != 0 {
		t.Fatalf("%v allocations per lookup", n)
	}
}
