package mesh

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomRecords makes a connected random graph of n nodes: a random tree
// plus extra links until the mean degree is about deg, with costs drawn from
// a small set so that equal-cost ties are everywhere.
func randomRecords(rng *rand.Rand, n, deg int, costs []uint32) map[NodeID]*Record {
	type pair struct{ a, b int }
	links := map[pair]uint32{}
	add := func(a, b int) {
		if a == b {
			return
		}
		if a > b {
			a, b = b, a
		}
		if _, ok := links[pair{a, b}]; !ok {
			links[pair{a, b}] = costs[rng.IntN(len(costs))]
		}
	}
	for i := 1; i < n; i++ {
		add(i, rng.IntN(i))
	}
	for want := min(n*deg/2, n*(n-1)/2); len(links) < want; {
		add(rng.IntN(n), rng.IntN(n))
	}
	recs := map[NodeID]*Record{}
	keys := make([]Key, n)
	for i := range n {
		keys[i] = labKey(i)
		recs[IDFromKey(keys[i])] = &Record{Origin: keys[i], Seq: 1, Lifetime: 600}
	}
	for p, c := range links {
		ra, rb := recs[IDFromKey(keys[p.a])], recs[IDFromKey(keys[p.b])]
		ra.Links = append(ra.Links, Link{rb.ID(), c})
		rb.Links = append(rb.Links, Link{ra.ID(), c})
	}
	for _, r := range recs {
		slices.SortFunc(r.Links, func(a, b Link) int { return cmp.Compare(a.Neighbour, b.Neighbour) })
	}
	return recs
}

// treePath returns the node indices from the root of the last run to v.
func treePath(sp *spf, v int32) []int32 {
	var p []int32
	for ; v >= 0; v = sp.parent[v] {
		p = append(p, v)
	}
	slices.Reverse(p)
	return p
}

// TestSPFSymmetric: on random graphs full of equal-cost ties, the path
// chosen from S to D is the reverse of the one chosen from D to S, for
// every pair, and its cost is the shortest (checked against Bellman-Ford).
func TestSPFSymmetric(t *testing.T) {
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 1))
		n := 5 + rng.IntN(60)
		costs := []uint32{1}
		if seed%3 == 1 {
			costs = []uint32{1, 2, 3}
		} else if seed%3 == 2 {
			costs = []uint32{10, 20, 25, 40}
		}
		g := buildGraph(randomRecords(rng, n, 3+rng.IntN(5), costs))
		paths := make([][][]int32, n)
		dists := make([][]uint64, n)
		var sp spf
		for s := range int32(n) {
			sp.run(g, s)
			paths[s] = make([][]int32, n)
			for d := range int32(n) {
				paths[s][d] = treePath(&sp, d)
			}
			dists[s] = slices.Clone(sp.dist)
		}
		for s := range n {
			bf := bellmanFord(g, int32(s))
			for d := range n {
				if dists[s][d] != bf[d] {
					t.Fatalf("seed %d: dist %d->%d = %d, Bellman-Ford %d", seed, s, d, dists[s][d], bf[d])
				}
				back := slices.Clone(paths[d][s])
				slices.Reverse(back)
				if !slices.Equal(paths[s][d], back) {
					t.Fatalf("seed %d: path %d->%d %v, reverse of %d->%d is %v", seed, s, d, paths[s][d], d, s, back)
				}
			}
		}
	}
}

func bellmanFord(g *graph, root int32) []uint64 {
	d := make([]uint64, g.n())
	for i := range d {
		d[i] = unreachable
	}
	d[root] = 0
	for range g.n() {
		for u := range int32(g.n()) {
			if d[u] == unreachable {
				continue
			}
			nbr, cost := g.edges(u)
			for k, w := range nbr {
				d[w] = min(d[w], d[u]+uint64(cost[k]))
			}
		}
	}
	return d
}

// TestSPFTieLowerIDs: a square S-a-D-b-S of equal costs has two equal
// paths from S to D; both ends pick the one through the lower node ID
// (802.1aq ECT: the lower sorted list of IDs).
func TestSPFTieLowerIDs(t *testing.T) {
	keys := []Key{labKey(0), labKey(1), labKey(2), labKey(3)}
	recs := map[NodeID]*Record{}
	for _, k := range keys {
		recs[IDFromKey(k)] = &Record{Origin: k, Seq: 1, Lifetime: 60}
	}
	link := func(a, b int) {
		ra, rb := recs[IDFromKey(keys[a])], recs[IDFromKey(keys[b])]
		ra.Links = append(ra.Links, Link{rb.ID(), 7})
		rb.Links = append(rb.Links, Link{ra.ID(), 7})
	}
	const S, a, D, b = 0, 1, 2, 3
	link(S, a)
	link(a, D)
	link(D, b)
	link(b, S)
	for _, r := range recs {
		slices.SortFunc(r.Links, func(x, y Link) int { return cmp.Compare(x.Neighbour, y.Neighbour) })
	}
	g := buildGraph(recs)
	var sp spf
	si, di := g.index[IDFromKey(keys[S])], g.index[IDFromKey(keys[D])]
	sp.run(g, si)
	fwd := treePath(&sp, di)
	sp.run(g, di)
	back := treePath(&sp, si)
	slices.Reverse(back)
	if !slices.Equal(fwd, back) {
		t.Fatalf("S->D %v, D->S reversed %v", fwd, back)
	}
	ai, bi := g.index[IDFromKey(keys[a])], g.index[IDFromKey(keys[b])]
	if want := min(ai, bi); len(fwd) != 3 || fwd[1] != want {
		t.Fatalf("S->D %v, want through the lower ID %d", fwd, want)
	}
}

// TestSPFBetterEdges: two candidates over the same nodes in different
// orders are told apart by their sorted edges, which is what keeps the
// order total. Tree: 0 root; 1 and 2 children of 0; candidates for 3 via 1
// (0-1-3) or via 2 (0-2-3) differ in nodes; candidates 0-1-2-3 and 0-2-1-3
// (1 a child of 2 in one tree, 2 of 1 in the other) share nodes.
func TestSPFBetterEdges(t *testing.T) {
	var sp spf
	sp.reset(4)
	sp.parent[1], sp.parent[2] = 0, 0
	if !sp.better(nil, 1, 2, 3) || sp.better(nil, 2, 1, 3) {
		t.Fatal("the path over the lower node IDs must win")
	}
	// 0-1-2-3 against 0-2-1-3: nodes {0,1,2,3} both; edges {01,12,23}
	// against {02,12,13}: 01 < 02, so 0-1-2-3 wins.
	sp.parent[2] = 1
	nodesA, edgesA := sp.path(nil, nil, 2, 3)
	sp.parent[2], sp.parent[1] = 0, 2
	nodesB, edgesB := sp.path(nil, nil, 1, 3)
	if !slices.Equal(nodesA, nodesB) {
		t.Fatalf("node sets %v %v differ", nodesA, nodesB)
	}
	if slices.Compare(edgesA, edgesB) >= 0 {
		t.Fatalf("edges %x not before %x", edgesA, edgesB)
	}
}
