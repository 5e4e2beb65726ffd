package mesh

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// View is a plain-data snapshot of a Machine for operators (`l2wg show
// mesh`, the metrics): every node of the database, every link any record
// lists, the paths of this node's table, and the counters. It shares no
// memory with the machine.
//
// Nodes and their links come from the database at the time of the view; the
// paths, hops and next hops come from the table in use, which is computed
// from the database SPFHold after a change (and not at all while the node
// syncs), so for a moment after a change the two may disagree.
type View struct {
	Self   NodeID
	Synced bool
	Nodes  []NodeView // ascending by ID
	Links  []LinkView // ascending by (A, B)
	Stats  Stats
	// UsedKnown: LinkView.Used was computed over every node's tree
	// (ComputeUsed).
	UsedKnown bool
	// Names are the operator's names of nodes (peer names); the machine
	// leaves it nil and the caller fills it. WriteDOT labels nodes by them.
	Names map[NodeID]string
}

// NodeView is one node of the database.
type NodeView struct {
	ID       NodeID
	Key      Key
	Seq      uint64
	Lifetime time.Duration // remaining, whole seconds
	// Reachable: on this node's tree (self included once it computes).
	Reachable bool
	Hops      int    // from self on its tree; 0 for self and unreachable nodes
	Cost      uint64 // of the path from self, summed over its links' costs
	NextHop   Port   // the link towards it; 0 for self and unreachable nodes
	// Path from self to the node, both included, as unicast frames and
	// this node's own multi-destination frames travel; nil if unreachable.
	Path []NodeID
}

// LinkView is one link, as the records of its ends list it.
type LinkView struct {
	A, B NodeID // A < B
	// CostAB is the cost A's record lists for its link to B, CostBA the
	// cost B's lists for A; 0 when the record does not list the link (or
	// is missing).
	CostAB, CostBA uint32
	// Confirmed: both ends list the link (the two-way check), so it is in
	// the graph, at Cost, the larger of the two.
	Confirmed bool
	Cost      uint32
	// InUse: the link is an edge of this node's shortest-path tree, the
	// tree of the table in use: some node's path from self crosses it. It
	// carries this node's unicast and its own multi-destination frames.
	// Other nodes' trees may use other links.
	InUse bool
	// Used: the link is on some node's shortest-path tree: the frames of
	// some pair of nodes take it (InUse implies Used). View sets it to
	// InUse; View.ComputeUsed computes it over every node's tree.
	Used bool
}

// MaxViewUsedNodes bounds the views for which ComputeUsed runs (one SPF per
// node: about 5 ms for 128 nodes, 0.2 s for 512, on a busy 2-core machine).
const MaxViewUsedNodes = 256

// View returns a snapshot of the machine at now.
func (m *Machine) View(now time.Time) View {
	v := View{Self: m.self, Synced: !m.syncing, Stats: m.stats}
	recs := make(map[NodeID]*Record, len(m.db))
	for id, e := range m.db {
		recs[id] = e.rec
	}
	t := m.table
	// The edges of self's tree, by (low, high) ID.
	tree := map[[2]NodeID]bool{}
	for j, p := range t.parent {
		if p >= 0 {
			tree[pair(t.ids[j], t.ids[p])] = true
		}
	}
	for _, id := range m.sortedIDs() {
		e := m.db[id]
		nv := NodeView{ID: id, Key: e.rec.Origin, Seq: e.rec.Seq,
			Lifetime: time.Duration(remaining(e.expires, now)) * time.Second}
		if nv.Path = t.Path(id); nv.Path != nil {
			nv.Reachable = true
			nv.Hops = len(nv.Path) - 1
			nv.NextHop, _, _ = t.NextHop(id)
			for k := 1; k < len(nv.Path); k++ {
				nv.Cost += uint64(graphCost(recs, nv.Path[k-1], nv.Path[k]))
			}
		}
		v.Nodes = append(v.Nodes, nv)
	}
	links := map[[2]NodeID]*LinkView{}
	for id, r := range recs {
		for _, l := range r.Links {
			k := pair(id, l.Neighbour)
			lv := links[k]
			if lv == nil {
				lv = &LinkView{A: k[0], B: k[1], InUse: tree[k], Used: tree[k]}
				links[k] = lv
			}
			if id == lv.A {
				lv.CostAB = l.Cost
			} else {
				lv.CostBA = l.Cost
			}
		}
	}
	for _, lv := range links {
		lv.Confirmed = lv.CostAB > 0 && lv.CostBA > 0
		if lv.Confirmed {
			lv.Cost = max(lv.CostAB, lv.CostBA)
		}
		v.Links = append(v.Links, *lv)
	}
	slices.SortFunc(v.Links, func(a, b LinkView) int {
		if a.A != b.A {
			return cmpID(a.A, b.A)
		}
		return cmpID(a.B, b.B)
	})
	return v
}

// ComputeUsed sets each link's Used from every node's shortest-path tree,
// computed from the view's confirmed links alone (the graph the machine
// computes from), and UsedKnown; it does nothing for views of more than
// MaxViewUsedNodes nodes. It reads no machine: call it after the lock
// around Machine.View is released.
func (v *View) ComputeUsed() {
	if len(v.Nodes) > MaxViewUsedNodes {
		return
	}
	recs := make(map[NodeID]*Record, len(v.Nodes))
	for _, n := range v.Nodes {
		recs[n.ID] = &Record{}
	}
	for _, l := range v.Links {
		ra, rb := recs[l.A], recs[l.B]
		if !l.Confirmed || ra == nil || rb == nil {
			continue
		}
		ra.Links = append(ra.Links, Link{Neighbour: l.B, Cost: l.Cost})
		rb.Links = append(rb.Links, Link{Neighbour: l.A, Cost: l.Cost})
	}
	for _, r := range recs {
		slices.SortFunc(r.Links, func(a, b Link) int { return cmpID(a.Neighbour, b.Neighbour) })
	}
	used := usedLinks(recs)
	for i := range v.Links {
		l := &v.Links[i]
		l.Used = l.InUse || used[[2]NodeID{l.A, l.B}]
	}
	v.UsedKnown = true
}

// usedLinks returns the links on some node's shortest-path tree.
func usedLinks(recs map[NodeID]*Record) map[[2]NodeID]bool {
	g := buildGraph(recs)
	var sp spf
	used := map[[2]NodeID]bool{}
	for root := range int32(g.n()) {
		sp.run(g, root)
		for i, p := range sp.parent {
			if p >= 0 {
				used[pair(g.ids[i], g.ids[p])] = true
			}
		}
	}
	return used
}

func pair(a, b NodeID) [2]NodeID {
	if a > b {
		a, b = b, a
	}
	return [2]NodeID{a, b}
}

func cmpID(a, b NodeID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// graphCost is the cost of the two-way link a–b in recs; 0 if it is not.
func graphCost(recs map[NodeID]*Record, a, b NodeID) uint32 {
	ra, rb := recs[a], recs[b]
	if ra == nil || rb == nil {
		return 0
	}
	ab, ok1 := linkCost(ra, b)
	ba, ok2 := linkCost(rb, a)
	if !ok1 || !ok2 {
		return 0
	}
	return max(ab, ba)
}

// Node returns the view of node id.
func (v View) Node(id NodeID) (NodeView, bool) {
	i, ok := slices.BinarySearchFunc(v.Nodes, id, func(n NodeView, id NodeID) int { return cmpID(n.ID, id) })
	if !ok {
		return NodeView{}, false
	}
	return v.Nodes[i], true
}

// Name returns the operator's name of id, or its ID in hex.
func (v View) Name(id NodeID) string {
	if n := v.Names[id]; n != "" {
		return n
	}
	return id.String()
}

// WriteDOT writes the mesh as a Graphviz graph (`dot -Tsvg`): one box per
// node, labelled by name and ID (self with a double border, unreachable
// nodes dashed and grey, nodes only named by others' records dotted); one
// edge per link labelled by its cost (both listed costs when they differ):
// bold when on this node's tree (InUse), plain when on some other node's
// (Used), grey when on no tree, dashed grey when not confirmed. The output depends only on
// v: the same view gives the same bytes.
func (v View) WriteDOT(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "graph mesh {\n")
	fmt.Fprintf(bw, "\tgraph [label=%s, labelloc=t, fontname=\"sans-serif\"];\n",
		dotQuote("mesh seen from "+v.Name(v.Self)))
	fmt.Fprintf(bw, "\tnode [shape=box, fontname=\"sans-serif\"];\n")
	fmt.Fprintf(bw, "\tedge [fontname=\"sans-serif\"];\n")
	known := make(map[NodeID]bool, len(v.Nodes))
	for _, n := range v.Nodes {
		known[n.ID] = true
		label := n.ID.String()
		if name := v.Names[n.ID]; name != "" {
			label = name + "\n" + label
		}
		var attrs []string
		attrs = append(attrs, "label="+dotQuote(label))
		switch {
		case n.ID == v.Self:
			attrs = append(attrs, "peripheries=2")
		case !n.Reachable:
			attrs = append(attrs, "style=dashed", "color=grey", "fontcolor=grey")
		}
		fmt.Fprintf(bw, "\t%s [%s];\n", dotQuote(n.ID.String()), strings.Join(attrs, ", "))
	}
	// Nodes that records name but whose own record is missing.
	var unknown []NodeID
	for _, l := range v.Links {
		for _, id := range []NodeID{l.A, l.B} {
			if !known[id] {
				known[id] = true
				unknown = append(unknown, id)
			}
		}
	}
	slices.Sort(unknown)
	for _, id := range unknown {
		fmt.Fprintf(bw, "\t%s [label=%s, style=dotted, color=grey, fontcolor=grey];\n",
			dotQuote(id.String()), dotQuote(v.Name(id)+"\n(no record)"))
	}
	for _, l := range v.Links {
		label := costText(l.CostAB) + "/" + costText(l.CostBA)
		if l.Confirmed && l.CostAB == l.CostBA {
			label = costText(l.Cost)
		}
		attrs := []string{"label=" + dotQuote(label)}
		switch {
		case !l.Confirmed:
			attrs = append(attrs, "style=dashed", "color=grey")
		case l.InUse:
			attrs = append(attrs, "style=bold", "penwidth=3")
		case v.UsedKnown && !l.Used:
			attrs = append(attrs, "color=grey", "fontcolor=grey")
		}
		fmt.Fprintf(bw, "\t%s -- %s [%s];\n", dotQuote(l.A.String()), dotQuote(l.B.String()), strings.Join(attrs, ", "))
	}
	fmt.Fprintf(bw, "}\n")
	return bw.Flush()
}

func costText(c uint32) string {
	if c == 0 {
		return "-"
	}
	return fmt.Sprint(c)
}

// dotQuote makes s a DOT quoted string: backslashes and quotes escaped,
// newlines as \n (a centred line break in a label).
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")
	return `"` + r.Replace(s) + `"`
}
