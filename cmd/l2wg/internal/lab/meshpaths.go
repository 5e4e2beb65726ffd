package lab

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The pair matrix (issue 13, "Shortest paths"): for every two VMs, the
// round trip over l2wg (the minimum of 20 pings) against the best underlay
// path through the peerings: the cheapest chain of peerings between their
// sites, each peering weighing its underlay round trip as measured by 20
// pings between the two hypervisors (the minimum). A spanning tree shows
// its detours here; a shortest-path mesh must stay within
// 1.1 x best + 2 ms.

// Shortest-path bound: measured <= pathFactor * best + pathSlack.
const (
	pathFactor = 1.1
	pathSlack  = 2.0 // ms
	pathPings  = 20
)

var rePingMin = regexp.MustCompile(`= ([\d.]+)/[\d.]+/`)

// pingMin sends count pings at interval from namespace ns to dst and
// returns the least round trip in ms and how many came back.
func (l *Lab) pingMin(ctx context.Context, ns, dst string, count int, interval time.Duration) (float64, int) {
	cctx, cancel := context.WithTimeout(ctx, time.Duration(count)*interval+10*time.Second)
	defer cancel()
	out, _ := l.NS.ExecContext(cctx, ns, "ping", "-n", "-q", "-c", strconv.Itoa(count),
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), "-W", "2", dst)
	received := 0
	if m := rePingCount.FindSubmatch(out); m != nil {
		received, _ = strconv.Atoi(string(m[2]))
	}
	m := rePingMin.FindSubmatch(out)
	if received == 0 || m == nil {
		return 0, 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v, received
}

// PeeringRTT is one peering's underlay round trip.
type PeeringRTT struct {
	A, B     string
	Measured float64 // ms, least of 20 pings between the hypervisors; 0: no answer
	Computed float64 // ms, twice the one-way delays of the topology's links on the way
}

// underlayRTTs measures the underlay round trip of every active peering,
// from the side that knows the other's address (the other may be behind
// NAT).
func (l *Lab) underlayRTTs(ctx context.Context) []PeeringRTT {
	active := l.activePeerings()
	out := make([]PeeringRTT, len(active))
	var wg sync.WaitGroup
	for i, pe := range active {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := pe.A, pe.EndpointOfB
			if !to.IsValid() {
				from, to = pe.B, pe.EndpointOfA
			}
			r := PeeringRTT{A: pe.A.Name, B: pe.B.Name}
			if _, d, ok := l.Plan.reach(from, l.Plan.Node(otherName(pe, from.Name))); ok {
				r.Computed = 2 * float64(d) / float64(time.Millisecond)
			}
			r.Measured, _ = l.pingMin(ctx, from.Name, to.Addr().String(), pathPings, 10*time.Millisecond)
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

func otherName(pe *PlannedPeering, n string) string {
	if pe.A.Name == n {
		return pe.B.Name
	}
	return pe.A.Name
}

// bestPaths runs Dijkstra over the sites, the peerings weighing rtt (ms)
// and shared LANs nothing, from every site; it returns the best round trip
// and its path of sites for every ordered pair of sites that are joined.
func bestPaths(sites []string, rtts []PeeringRTT, lans [][]string) (map[[2]string]float64, map[[2]string][]string) {
	type edge struct {
		to string
		w  float64
	}
	adj := make(map[string][]edge)
	for _, r := range rtts {
		if r.Measured <= 0 {
			continue
		}
		adj[r.A] = append(adj[r.A], edge{r.B, r.Measured})
		adj[r.B] = append(adj[r.B], edge{r.A, r.Measured})
	}
	for _, lan := range lans {
		for _, a := range lan {
			for _, b := range lan {
				if a != b {
					adj[a] = append(adj[a], edge{b, 0})
				}
			}
		}
	}
	dist := make(map[[2]string]float64)
	paths := make(map[[2]string][]string)
	for _, src := range sites {
		d := map[string]float64{src: 0}
		prev := map[string]string{}
		done := map[string]bool{}
		for {
			u, best := "", math.Inf(1)
			for _, s := range sites { // in order: deterministic ties
				if v, ok := d[s]; ok && !done[s] && v < best {
					u, best = s, v
				}
			}
			if u == "" {
				break
			}
			done[u] = true
			for _, e := range adj[u] {
				if v, ok := d[e.to]; !ok || best+e.w < v {
					d[e.to] = best + e.w
					prev[e.to] = u
				}
			}
		}
		for dst, v := range d {
			path := []string{dst}
			for x := dst; x != src; x = prev[x] {
				path = append([]string{prev[x]}, path...)
			}
			dist[[2]string{src, dst}] = v
			paths[[2]string{src, dst}] = path
		}
	}
	return dist, paths
}

// withinBound reports whether a measured round trip is within the
// shortest-path bound of the best one.
func withinBound(measured, best float64) bool { return measured <= pathFactor*best+pathSlack }

// PairRTT is one cell of the pair matrix.
type PairRTT struct {
	A, B     string   // VMs
	Measured float64  // ms, least of 20 pings over l2wg; 0: no answer
	Best     float64  // ms, the best underlay path through the peerings
	Path     []string // its sites
}

// PairMatrix measures every pair of VMs that can reach each other (each
// unordered pair once) and the underlay round trip of every peering.
func (l *Lab) PairMatrix(ctx context.Context) ([]PairRTT, []PeeringRTT) {
	rtts := l.underlayRTTs(ctx)
	vms, reach := l.reachableVMs()
	var sites []string
	for _, n := range l.Plan.Sites() {
		sites = append(sites, n.Name)
	}
	var lans [][]string
	for _, lan := range l.Plan.LANs {
		var names []string
		for _, s := range lan.Sites {
			names = append(names, s.Name)
		}
		lans = append(lans, names)
	}
	best, paths := bestPaths(sites, rtts, lans)
	var pairs []PairRTT
	for i, a := range vms {
		for _, b := range vms[i+1:] {
			if reach(a, b) {
				k := [2]string{a.Site.Name, b.Site.Name}
				pairs = append(pairs, PairRTT{A: a.Name, B: b.Name, Best: best[k], Path: paths[k]})
			}
		}
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				pr := &pairs[i]
				dst := l.Plan.VM(pr.B).Addr.Addr()
				// First a reply at all (ARP, learning), then the burst.
				if r := l.ping(ctx, pr.A, dst, time.Now().Add(10*time.Second)); r.received == 0 {
					continue
				}
				pr.Measured, _ = l.pingMin(ctx, pr.A, dst.String(), pathPings, 50*time.Millisecond)
			}
		}()
	}
	for i := range pairs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return pairs, rtts
}

// CheckShortestPaths prints the pair matrix and, when required, checks
// every pair against the bound. A topology requires it with [checks]
// shortest_paths = true; it is judged only when the sites run the
// shortest-path mesh (a spanning tree has detours by design).
func (l *Lab) CheckShortestPaths(ctx context.Context, required bool) Check {
	start := time.Now()
	c := Check{Name: "shortest paths"}
	pairs, rtts := l.PairMatrix(ctx)
	c.Details = formatPairMatrix(pairs, rtts)
	var over []string
	answered := 0
	for _, p := range pairs {
		switch {
		case p.Measured == 0:
			over = append(over, fmt.Sprintf("%s-%s: no answer", p.A, p.B))
		case !withinBound(p.Measured, p.Best):
			answered++
			over = append(over, fmt.Sprintf("%s-%s %.1f ms > %.1f x %.1f + %.0f (best %s)", p.A, p.B, p.Measured, pathFactor, p.Best, pathSlack, strings.Join(p.Path, "-")))
		default:
			answered++
		}
	}
	within := len(pairs) - len(over)
	c.Summary = fmt.Sprintf("%d/%d VM pairs within %.1f x best underlay path + %.0f ms (%s)", within, len(pairs), pathFactor, pathSlack, l.Plan.MeshProtocol())
	if len(over) > 0 {
		c.Details = append(c.Details, "over the bound: "+strings.Join(over, "; "))
	}
	switch {
	case len(pairs) == 0:
		c.Status, c.Summary = statusSkip, "fewer than two VMs that can reach each other"
	case required:
		c.Status = verdict(len(over) == 0)
	default:
		c.Status = statusSkip
		if l.Plan.Topo.Checks.ShortestPaths {
			c.Summary += "; not judged: the sites run " + l.Plan.MeshProtocol() + ", not the shortest-path mesh"
		} else {
			c.Summary += "; not judged ([checks] shortest_paths)"
		}
	}
	c.Took = time.Since(start)
	return c
}

// shortestPathsRequired reports whether lab run judges the pair matrix.
func (l *Lab) shortestPathsRequired() bool {
	return l.Plan.Topo.Checks.ShortestPaths && l.Plan.MeshProtocol() == ProtocolShortestPath
}

// formatPairMatrix prints the matrix "measured/best" in ms, a '!' after a
// pair over the bound, then the peerings' underlay round trips.
func formatPairMatrix(pairs []PairRTT, rtts []PeeringRTT) []string {
	var names []string
	seen := map[string]bool{}
	cell := map[[2]string]string{}
	for _, p := range pairs {
		for _, n := range []string{p.A, p.B} {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
		s := "FAIL"
		if p.Measured > 0 {
			s = fmt.Sprintf("%.1f/%.1f", p.Measured, p.Best)
			if !withinBound(p.Measured, p.Best) {
				s += "!"
			}
		}
		cell[[2]string{p.A, p.B}], cell[[2]string{p.B, p.A}] = s, s
	}
	w := 13
	for _, n := range names {
		w = max(w, len(n)+2)
	}
	lines := []string{fmt.Sprintf("%-*s", w, "ms l2wg/best") + func() string {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "%*s", w, n)
		}
		return b.String()
	}()}
	for _, a := range names {
		row := fmt.Sprintf("%-*s", w, a)
		for _, b := range names {
			s, ok := cell[[2]string{a, b}]
			switch {
			case a == b:
				s = "-"
			case !ok:
				s = "(cut)"
			}
			row += fmt.Sprintf("%*s", w, s)
		}
		lines = append(lines, row)
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i].A+rtts[i].B < rtts[j].A+rtts[j].B })
	var under []string
	for _, r := range rtts {
		under = append(under, fmt.Sprintf("%s-%s %.1f (topology %.0f)", r.A, r.B, r.Measured, r.Computed))
	}
	lines = append(lines, "underlay rtt of the peerings, ms, least of 20 pings between the hypervisors: "+strings.Join(under, ", "))
	return lines
}
