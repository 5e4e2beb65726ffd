package lab

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// treeView is the spanning tree as the sites report it.
type treeView struct {
	missing      string          // a site without STP status
	roots        map[string]bool // designated roots reported
	rootSite     string          // the site whose bridge is the root
	transitional []string        // "a:port listening"
	forwarding   []string        // "a-b" with both ends forwarding
	blocked      []string        // "a-b" with an end blocking
	spanning     bool            // forwarding is a tree over the sites
}

func (t *treeView) rootList() []string {
	var r []string
	for id := range t.roots {
		r = append(r, id)
	}
	sort.Strings(r)
	return r
}

func (l *Lab) tree(all map[string]*SiteStatus, sites []string, active []*PlannedPeering) treeView {
	t := treeView{roots: make(map[string]bool)}
	for _, s := range sites {
		st := all[s]
		if st == nil || st.STP == nil {
			t.missing = fmt.Sprintf("%s reports no spanning tree", s)
			return t
		}
		t.roots[st.STP.DesignatedRoot] = true
		if st.STP.IsRoot {
			t.rootSite = s
		}
		for _, p := range st.STP.Ports {
			if transitional(p.State, p.Role) {
				t.transitional = append(t.transitional, fmt.Sprintf("%s:%s %s", s, p.Name, p.State))
			}
		}
	}
	// Forwarding peerings without a cycle, as many as the peerings
	// themselves need to join the sites, are a spanning tree.
	joined := make(sets)
	cycle := false
	for _, pe := range active {
		sa, _ := all[pe.A.Name].portState(pe.B.Name)
		sb, _ := all[pe.B.Name].portState(pe.A.Name)
		name := pe.A.Name + "-" + pe.B.Name
		if sa != "forwarding" || sb != "forwarding" {
			t.blocked = append(t.blocked, name)
			continue
		}
		t.forwarding = append(t.forwarding, name)
		if !joined.union(pe.A.Name, pe.B.Name) {
			cycle = true
		}
	}
	t.spanning = !cycle && len(t.forwarding) == len(sites)-components(sites, active)
	return t
}

// components counts the connected parts of the graph of sites and peerings:
// a spanning forest of n sites in k parts has n-k links.
func components(sites []string, active []*PlannedPeering) int {
	joined := make(sets)
	k := len(sites)
	for _, pe := range active {
		if joined.union(pe.A.Name, pe.B.Name) {
			k--
		}
	}
	return k
}

// transitional reports whether a port is on its way to another state: an
// 802.1D port listening or learning, or (as RSTP has it) a root or designated
// port that does not forward yet. Stable ports forward, or block in a
// blocking role, or are disabled.
func transitional(state, role string) bool {
	switch state {
	case "listening", "learning":
		return true
	case "forwarding", "disabled":
		return false
	}
	return role == "root" || role == "designated"
}

// CheckSpanningTree reads every running site's spanning tree and checks
// that it is one tree: one root that is a site, no port in transition, and
// forwarding peerings that join the sites without a cycle.
func (l *Lab) CheckSpanningTree(ctx context.Context) Check {
	start := time.Now()
	c := Check{Name: "spanning tree"}
	switch {
	case l.NoSTP:
		c.Status, c.Summary = statusSkip, "this l2wg has no spanning tree"
		return c
	case l.Plan.MeshProtocol() == ProtocolShortestPath:
		c.Status, c.Summary = statusSkip, "the sites run the shortest-path mesh, no spanning tree"
		return c
	case !l.STP:
		c.Status, c.Summary = statusSkip, "the topology turns the spanning tree off"
		return c
	case !l.Show:
		c.Status, c.Summary = statusSkip, "this l2wg has no `l2wg show` to read the tree from"
		return c
	}
	sites := l.runningSites()
	all, err := l.statuses(ctx, sites)
	if err != nil {
		c.Status, c.Summary = statusFail, err.Error()
		return c
	}
	active := l.activePeerings()
	t := l.tree(all, sites, active)
	if t.missing != "" {
		c.Status, c.Summary = statusFail, t.missing
		return c
	}
	root := t.rootSite
	ok := len(t.roots) == 1 && root != "" && len(t.transitional) == 0 && t.spanning
	c.Status = verdict(ok)
	c.Summary = fmt.Sprintf("root %s; forwarding %s; blocked %s", orDefault(root, "?"),
		orDefault(strings.Join(t.forwarding, " "), "none"), orDefault(strings.Join(t.blocked, " "), "none"))
	if !ok {
		c.Details = append(c.Details, "not one tree: "+l.notConverged(all, sites))
	}
	w := 0
	for _, s := range sites {
		w = max(w, len(s))
	}
	for _, s := range sites {
		st := all[s].STP
		where := "root port " + st.RootPort
		if st.IsRoot {
			where = "root bridge"
		}
		var ports []string
		for _, p := range st.Ports {
			ports = append(ports, fmt.Sprintf("%s %s/%s", p.Name, p.State, p.Role))
		}
		c.Details = append(c.Details, fmt.Sprintf("%-*s  %s, %s (cost %d): %s", w, s, st.BridgeID, where, st.RootPathCost, strings.Join(ports, ", ")))
	}
	c.Took = time.Since(start)
	return c
}
