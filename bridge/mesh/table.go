package mesh

import "slices"

// Table is one immutable forwarding snapshot: where a frame goes, computed
// from one database. The data path reads it without locks (keep it behind an
// atomic.Pointer and swap on TablesChanged); its methods never allocate and
// it is never modified after the machine hands it out.
type Table struct {
	self  NodeID
	index map[NodeID]int32 // every reachable node but self
	ids   []NodeID         // ascending, self included when reachable
	// per node index:
	next     []Port  // first hop towards it; 0 for self
	hops     []uint8 // hops from self, capped at 255
	parent   []int32 // in self's tree; -1 for self
	multiOff []int32 // multi[multiOff[i]:multiOff[i+1]]: targets for ingress i
	multi    []Port

	selfIdx  int32 // -1: self not in the graph (no database yet)
	maxHops  uint8 // the depth of self's tree
	neighbor map[Port]NodeID
}

// EmptyTable returns a table of node self that forwards nothing over the
// mesh: what a node uses until it has learned the database.
func EmptyTable(self NodeID) *Table { return emptyTable(self) }

func emptyTable(self NodeID) *Table {
	return &Table{self: self, selfIdx: -1, multiOff: []int32{0}}
}

// Self returns this node's ID.
func (t *Table) Self() NodeID { return t.self }

// Reachable reports whether node id is in the graph and reachable (self
// included once the node computes).
func (t *Table) Reachable(id NodeID) bool {
	if id == t.self {
		return t.selfIdx >= 0
	}
	_, ok := t.index[id]
	return ok
}

// Nodes returns every reachable node, ascending, self included. The slice is
// the table's: do not modify it.
func (t *Table) Nodes() []NodeID { return t.ids }

// hopLimit is what an ingress node puts in the header of a frame whose path
// is h hops long: twice that plus two, so that a longer path taken during a
// change still arrives, and a transient loop dies after a few turns.
func hopLimit(h uint8) uint8 { return uint8(min(255, 2*int(h)+2)) }

// NextHop returns the port of the next hop towards node egress and the hop
// limit an ingress node puts on the frame; ok is false when egress is self
// or unreachable.
func (t *Table) NextHop(egress NodeID) (p Port, limit uint8, ok bool) {
	i, ok := t.index[egress]
	if !ok || t.next[i] == 0 {
		return 0, 0, false
	}
	return t.next[i], hopLimit(t.hops[i]), true
}

// AcceptMulti reports whether a multi-destination frame from ingress node
// ingress, received from port from, is on the ingress node's tree (the
// reverse-path check): from must be this node's next hop towards ingress.
// Frames that fail are dropped, never forwarded: during a change that loses
// frames rather than duplicating them.
func (t *Table) AcceptMulti(ingress NodeID, from Port) bool {
	i, ok := t.index[ingress]
	return ok && from != 0 && t.next[i] == from
}

// MultiTargets returns the ports on which a multi-destination frame from
// ingress goes on: every neighbour whose next hop towards ingress is this
// node. For ingress == Self, the frames this node's edge sends into the
// mesh. The slice is the table's: do not modify it.
func (t *Table) MultiTargets(ingress NodeID) []Port {
	i := t.selfIdx
	if ingress != t.self {
		var ok bool
		if i, ok = t.index[ingress]; !ok {
			return nil
		}
	}
	if i < 0 {
		return nil
	}
	return t.multi[t.multiOff[i]:t.multiOff[i+1]]
}

// MultiHopLimit is the hop limit this node puts on its own multi-destination
// frames: enough for the depth of its tree.
func (t *Table) MultiHopLimit() uint8 { return hopLimit(t.maxHops) }

// Neighbour returns the node on the other end of port p, if p carries a
// two-way adjacency in this table.
func (t *Table) Neighbour(p Port) (NodeID, bool) {
	id, ok := t.neighbor[p]
	return id, ok
}

// Path returns the nodes from self to dst, both included, on this node's
// tree; nil if dst is unreachable.
func (t *Table) Path(dst NodeID) []NodeID {
	var i int32
	switch {
	case dst == t.self && t.selfIdx >= 0:
		return []NodeID{t.self}
	case dst == t.self:
		return nil
	default:
		var ok bool
		if i, ok = t.index[dst]; !ok {
			return nil
		}
	}
	var p []NodeID
	for ; i >= 0; i = t.parent[i] {
		p = append(p, t.ids[i])
	}
	slices.Reverse(p)
	return p
}

// sameForwarding reports whether t and u forward every frame alike.
func (t *Table) sameForwarding(u *Table) bool {
	return t.selfIdx == u.selfIdx && t.maxHops == u.maxHops &&
		slices.Equal(t.ids, u.ids) && slices.Equal(t.next, u.next) &&
		slices.Equal(t.hops, u.hops) && slices.Equal(t.multiOff, u.multiOff) &&
		slices.Equal(t.multi, u.multi) && slices.Equal(t.parent, u.parent)
}

// buildTable computes the forwarding table of self from g: one SPF from self
// (next hops, hops, the reverse-path check) and one from each neighbour
// (whether that neighbour's next hop towards each ingress node is self).
// ports maps each neighbour node to its port. sp is scratch.
func buildTable(g *graph, self NodeID, ports map[NodeID]Port, sp *spf) (*Table, int) {
	root, ok := g.index[self]
	if !ok {
		return emptyTable(self), 0
	}
	n := g.n()
	sp.run(g, root)
	runs := 1
	t := &Table{self: self, selfIdx: -1, index: make(map[NodeID]int32, n), neighbor: map[Port]NodeID{}}
	// Keep reachable nodes only, in ID order; remap indices.
	remap := make([]int32, n)
	for i := range n {
		remap[i] = -1
		if sp.dist[i] != unreachable {
			remap[i] = int32(len(t.ids))
			t.ids = append(t.ids, g.ids[i])
		}
	}
	m := len(t.ids)
	t.next = make([]Port, m)
	t.hops = make([]uint8, m)
	t.parent = make([]int32, m)
	t.selfIdx = remap[root]
	for i := range n {
		j := remap[i]
		if j < 0 {
			continue
		}
		if int32(i) != root {
			t.index[g.ids[i]] = j
			t.next[j] = ports[g.ids[sp.first[i]]]
		}
		t.hops[j] = uint8(min(255, int(sp.hops[i])))
		t.maxHops = max(t.maxHops, t.hops[j])
		t.parent[j] = -1
		if p := sp.parent[i]; p >= 0 {
			t.parent[j] = remap[p]
		}
	}
	// For each two-way neighbour with a port: which ingress nodes' frames
	// it expects from self.
	type nb struct {
		port  Port
		first []bool // per graph index: the neighbour's first hop to it is self
	}
	nbrIdx, _ := g.edges(root)
	var nbs []nb
	for _, w := range nbrIdx {
		p, ok := ports[g.ids[w]]
		if !ok || p == 0 {
			continue
		}
		t.neighbor[p] = g.ids[w]
		sp.run(g, w)
		runs++
		f := make([]bool, n)
		for i := range n {
			f[i] = sp.first[i] == root
		}
		nbs = append(nbs, nb{p, f})
	}
	slices.SortFunc(nbs, func(a, b nb) int { return int(a.port) - int(b.port) })
	t.multiOff = make([]int32, m+1)
	for i := range n {
		j := remap[i]
		if j < 0 {
			continue
		}
		for _, b := range nbs {
			if b.first[i] {
				t.multi = append(t.multi, b.port)
			}
		}
		t.multiOff[j+1] = int32(len(t.multi))
	}
	// The root row: sp.first[root] of a neighbour's run is self when
	// the neighbour reaches self directly; covered by the loop above.
	return t, runs
}
