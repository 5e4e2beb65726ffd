package mesh

import (
	"cmp"
	"slices"
)

// graph is the two-way-checked topology of one database, in compressed
// sparse rows: node i's edges are nbr[off[i]:off[i+1]] with their costs.
// Nodes are indexed in ascending ID order, so comparing indices compares IDs
// and every node that holds the same database builds the same graph.
type graph struct {
	ids   []NodeID // ascending
	index map[NodeID]int32
	off   []int32
	nbr   []int32
	cost  []uint32
}

func (g *graph) n() int { return len(g.ids) }

func (g *graph) edges(i int32) (nbr []int32, cost []uint32) {
	return g.nbr[g.off[i]:g.off[i+1]], g.cost[g.off[i]:g.off[i+1]]
}

// buildGraph makes the graph of recs (one per origin, keyed by ID). An edge
// A–B exists only when A lists B and B lists A (two-way check); its cost is
// the larger of the two listed costs, so that both directions cost the same
// and shortest paths can be symmetric.
func buildGraph(recs map[NodeID]*Record) *graph {
	g := &graph{ids: make([]NodeID, 0, len(recs)), index: make(map[NodeID]int32, len(recs))}
	for id := range recs {
		g.ids = append(g.ids, id)
	}
	slices.Sort(g.ids)
	for i, id := range g.ids {
		g.index[id] = int32(i)
	}
	g.off = make([]int32, len(g.ids)+1)
	for i, id := range g.ids {
		r := recs[id]
		for _, l := range r.Links {
			j, ok := g.index[l.Neighbour]
			if !ok {
				continue
			}
			back, ok := linkCost(recs[l.Neighbour], id)
			if !ok {
				continue
			}
			g.nbr = append(g.nbr, j)
			g.cost = append(g.cost, max(l.Cost, back))
		}
		g.off[i+1] = int32(len(g.nbr))
	}
	return g
}

// linkCost returns the cost r lists for its link to n.
func linkCost(r *Record, n NodeID) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(r.Links, n, func(l Link, n NodeID) int { return cmp.Compare(l.Neighbour, n) })
	if !ok {
		return 0, false
	}
	return r.Links[i].Cost, true
}

// spf is one shortest-path computation and its scratch, reused between runs.
//
// The order of paths is (cost, hops, sorted node IDs, sorted edges): the
// first three are 802.1aq's ECT tie-break, the fourth settles the rare tie of
// two paths over the same set of nodes in different orders. Every key is the
// same for a path and its reverse, and the order is total on simple paths
// (two different simple paths have different edge sets), so the path chosen
// from S to D is the reverse of the one chosen from D to S. Each key is kept
// by extending both paths with the same node or edge, which is what lets
// Dijkstra settle ties as it goes: a node's candidates all come from nodes
// finalised before it (costs are positive).
type spf struct {
	dist   []uint64
	hops   []uint16
	parent []int32 // -1: root or unreachable
	first  []int32 // the root's neighbour on the path; -1 for root/unreachable
	done   []bool
	heap   []heapItem

	bufA, bufB   []int32
	edgeA, edgeB []uint64
}

type heapItem struct {
	dist uint64
	hops uint16
	node int32
}

const unreachable = ^uint64(0)

func (s *spf) reset(n int) {
	s.dist = slices.Grow(s.dist[:0], n)[:n]
	s.hops = slices.Grow(s.hops[:0], n)[:n]
	s.parent = slices.Grow(s.parent[:0], n)[:n]
	s.first = slices.Grow(s.first[:0], n)[:n]
	s.done = slices.Grow(s.done[:0], n)[:n]
	for i := range n {
		s.dist[i] = unreachable
		s.hops[i] = 0
		s.parent[i] = -1
		s.first[i] = -1
		s.done[i] = false
	}
	s.heap = s.heap[:0]
}

// run computes the shortest-path tree of g from root.
func (s *spf) run(g *graph, root int32) {
	s.reset(g.n())
	s.dist[root] = 0
	s.push(heapItem{0, 0, root})
	for len(s.heap) > 0 {
		it := s.pop()
		u := it.node
		if s.done[u] {
			continue
		}
		s.done[u] = true
		nbr, cost := g.edges(u)
		for k, w := range nbr {
			if s.done[w] {
				continue
			}
			d, h := s.dist[u]+uint64(cost[k]), s.hops[u]+1
			switch {
			case d < s.dist[w] || d == s.dist[w] && h < s.hops[w]:
			case d == s.dist[w] && h == s.hops[w] && s.better(g, u, s.parent[w], w):
			default:
				continue
			}
			s.dist[w], s.hops[w], s.parent[w] = d, h, u
			if u == root {
				s.first[w] = w
			} else {
				s.first[w] = s.first[u]
			}
			s.push(heapItem{d, h, w})
		}
	}
}

// better reports whether the path root…a–w is before root…b–w in the tie
// order, given equal cost and hops (a and b are finalised).
func (s *spf) better(g *graph, a, b, w int32) bool {
	if a == b {
		return false
	}
	s.bufA, s.edgeA = s.path(s.bufA[:0], s.edgeA[:0], a, w)
	s.bufB, s.edgeB = s.path(s.bufB[:0], s.edgeB[:0], b, w)
	if c := slices.Compare(s.bufA, s.bufB); c != 0 {
		return c < 0
	}
	return slices.Compare(s.edgeA, s.edgeB) < 0
}

// path appends the sorted nodes and sorted edges of root…p–w.
func (s *spf) path(nodes []int32, edges []uint64, p, w int32) ([]int32, []uint64) {
	nodes = append(nodes, w)
	for v, prev := p, w; v >= 0; prev, v = v, s.parent[v] {
		nodes = append(nodes, v)
		edges = append(edges, edgeKey(v, prev))
	}
	slices.Sort(nodes)
	slices.Sort(edges)
	return nodes, edges
}

func edgeKey(a, b int32) uint64 {
	if a > b {
		a, b = b, a
	}
	return uint64(a)<<32 | uint64(uint32(b))
}

func (s *spf) push(it heapItem) {
	s.heap = append(s.heap, it)
	i := len(s.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(s.heap[i], s.heap[p]) {
			break
		}
		s.heap[i], s.heap[p] = s.heap[p], s.heap[i]
		i = p
	}
}

func (s *spf) pop() heapItem {
	h := s.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && less(h[l], h[m]) {
			m = l
		}
		if r < len(h) && less(h[r], h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	s.heap = h
	return top
}

func less(a, b heapItem) bool {
	if a.dist != b.dist {
		return a.dist < b.dist
	}
	return a.hops < b.hops
}
