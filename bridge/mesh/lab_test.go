package mesh

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"
)

// A lab wires N Machines with in-memory links and steps a fake clock. Every
// Send action travels as bytes (ParseMessage on arrival) and arrives after
// the link's delay in steps, unless the link loses it. Links go down (both
// ends see AdjacencyDown, as liveness reports a peer that stopped
// answering); nodes die (they stop, and their neighbours see the adjacency
// go down).

var labEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type labLink struct {
	a, b   int
	pa, pb Port
	cost   uint32
	delay  int // steps
	down   bool
}

type labNode struct {
	m     *Machine
	key   Key
	id    NodeID
	dead  bool
	table *Table
	links map[Port]int // port -> link index
	next  Port
}

type labMsg struct {
	due  int
	seq  int
	to   int
	port Port
	msg  []byte
}

type labQueue []labMsg

func (q labQueue) Len() int { return len(q) }
func (q labQueue) Less(i, j int) bool {
	return q[i].due < q[j].due || q[i].due == q[j].due && q[i].seq < q[j].seq
}
func (q labQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *labQueue) Push(x any)   { *q = append(*q, x.(labMsg)) }
func (q *labQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

type lab struct {
	t       testing.TB
	cfg     Config
	now     time.Time
	step    time.Duration
	steps   int
	nodes   []*labNode
	links   []*labLink
	q       labQueue
	seq     int
	rng     *rand.Rand
	loss    float64 // probability that a message is lost
	sent    int
	changed int // the last step in which some node's table changed
	check   func()
}

func labKey(i int) Key {
	var k Key
	k[0], k[1], k[2] = 0x6c, byte(i>>8), byte(i)
	return k
}

func newLab(t testing.TB, n int, seed uint64) *lab {
	t.Helper()
	l := &lab{t: t, now: labEpoch, step: 10 * time.Millisecond,
		rng: rand.New(rand.NewPCG(seed, 0x6d657368))}
	l.cfg = Config{SummaryInterval: time.Second, SPFHold: 10 * time.Millisecond}
	for i := range n {
		l.addNode(i)
	}
	return l
}

func (l *lab) addNode(i int) {
	cfg := l.cfg
	cfg.Key = labKey(i)
	cfg.Boot = l.now
	m, err := New(cfg, l.now)
	if err != nil {
		l.t.Fatal(err)
	}
	nd := &labNode{m: m, key: cfg.Key, id: m.ID(), table: m.Table(), links: map[Port]int{}, next: 1}
	if i < len(l.nodes) {
		old := l.nodes[i]
		nd.links, nd.next = old.links, old.next
		l.nodes[i] = nd
		return
	}
	l.nodes = append(l.nodes, nd)
}

// connect adds a link between a and b (down until up is called).
func (l *lab) connect(a, b int, cost uint32, delay int) int {
	lk := &labLink{a: a, b: b, cost: cost, delay: max(delay, 1), down: true}
	lk.pa, lk.pb = l.nodes[a].next, l.nodes[b].next
	l.nodes[a].next++
	l.nodes[b].next++
	i := len(l.links)
	l.links = append(l.links, lk)
	l.nodes[a].links[lk.pa] = i
	l.nodes[b].links[lk.pb] = i
	return i
}

// up brings link i up: both ends report the adjacency.
func (l *lab) up(i int) {
	lk := l.links[i]
	if !lk.down || l.nodes[lk.a].dead || l.nodes[lk.b].dead {
		return
	}
	lk.down = false
	l.apply(lk.a, l.nodes[lk.a].m.AdjacencyUp(lk.pa, l.nodes[lk.b].key, lk.cost, l.now))
	l.apply(lk.b, l.nodes[lk.b].m.AdjacencyUp(lk.pb, l.nodes[lk.a].key, lk.cost, l.now))
}

// cut takes link i down: both live ends report it.
func (l *lab) cut(i int) {
	lk := l.links[i]
	if lk.down {
		return
	}
	lk.down = true
	for _, e := range [][2]int{{lk.a, int(lk.pa)}, {lk.b, int(lk.pb)}} {
		if nd := l.nodes[e[0]]; !nd.dead {
			l.apply(e[0], nd.m.AdjacencyDown(Port(e[1]), l.now))
		}
	}
}

// kill stops node n: its links go down at their other ends.
func (l *lab) kill(n int) {
	for _, i := range l.nodeLinks(n) {
		l.cut(i)
	}
	l.nodes[n].dead = true
}

// restart brings node n back with an empty database and a later boot time,
// and its links up.
func (l *lab) restart(n int) {
	l.addNode(n)
	for _, i := range l.nodeLinks(n) {
		l.up(i)
	}
}

func (l *lab) nodeLinks(n int) []int {
	var ls []int
	for i, lk := range l.links {
		if lk.a == n || lk.b == n {
			ls = append(ls, i)
		}
	}
	return ls
}

func (l *lab) apply(n int, acts []Action) {
	for _, a := range acts {
		switch a.Kind {
		case Send:
			lk := l.links[l.nodes[n].links[a.Port]]
			if lk.down {
				continue
			}
			to, port := lk.b, lk.pb
			if lk.b == n {
				to, port = lk.a, lk.pa
			}
			l.sent++
			if l.loss > 0 && l.rng.Float64() < l.loss {
				continue
			}
			l.seq++
			heap.Push(&l.q, labMsg{due: l.steps + lk.delay, seq: l.seq, to: to, port: port, msg: a.Msg})
		case TablesChanged:
			l.nodes[n].table = a.Table
			l.changed = l.steps
		}
	}
}

// stepOnce advances the clock one step: deliveries due, then every Tick.
func (l *lab) stepOnce() {
	l.steps++
	l.now = l.now.Add(l.step)
	for len(l.q) > 0 && l.q[0].due <= l.steps {
		d := heap.Pop(&l.q).(labMsg)
		nd := l.nodes[d.to]
		if nd.dead {
			continue
		}
		if lk := l.links[nd.links[d.port]]; lk.down {
			continue
		}
		l.apply(d.to, nd.m.Receive(d.port, d.msg, l.now))
	}
	for i, nd := range l.nodes {
		if !nd.dead {
			l.apply(i, nd.m.Tick(l.now))
		}
	}
	if l.check != nil {
		l.check()
	}
}

func (l *lab) run(d time.Duration) {
	for end := l.now.Add(d); l.now.Before(end); {
		l.stepOnce()
	}
}

// settle steps until no message is in flight and no table changed for a
// summary interval, or fails after limit. It returns the steps from the
// call to the last table change.
func (l *lab) settle(limit time.Duration) int {
	l.t.Helper()
	start := l.steps
	l.changed = start
	quiet := int(l.cfg.SummaryInterval/l.step) + 2
	for end := l.now.Add(limit); l.now.Before(end); {
		l.stepOnce()
		if len(l.q) == 0 && l.steps-l.changed > quiet && l.allSynced() {
			return l.changed - start
		}
	}
	l.t.Fatalf("not settled after %v (%d messages in flight)", limit, len(l.q))
	return 0
}

func (l *lab) allSynced() bool {
	for _, nd := range l.nodes {
		if !nd.dead && !nd.m.Synced() {
			return false
		}
	}
	return true
}

// truth is the live graph as the lab knows it: Dijkstra distances between
// live nodes over links that are up.
func (l *lab) truth() [][]uint64 {
	n := len(l.nodes)
	adj := make([][]struct {
		to   int
		cost uint64
	}, n)
	for _, lk := range l.links {
		if lk.down || l.nodes[lk.a].dead || l.nodes[lk.b].dead {
			continue
		}
		adj[lk.a] = append(adj[lk.a], struct {
			to   int
			cost uint64
		}{lk.b, uint64(lk.cost)})
		adj[lk.b] = append(adj[lk.b], struct {
			to   int
			cost uint64
		}{lk.a, uint64(lk.cost)})
	}
	dist := make([][]uint64, n)
	for s := range n {
		d := make([]uint64, n)
		for i := range d {
			d[i] = unreachable
		}
		d[s] = 0
		h := &distHeap{{0, s}}
		for h.Len() > 0 {
			it := heap.Pop(h).(distItem)
			if it.d > d[it.n] {
				continue
			}
			for _, e := range adj[it.n] {
				if nd := it.d + e.cost; nd < d[e.to] {
					d[e.to] = nd
					heap.Push(h, distItem{nd, e.to})
				}
			}
		}
		dist[s] = d
	}
	return dist
}

type distItem struct {
	d uint64
	n int
}
type distHeap []distItem

func (h distHeap) Len() int           { return len(h) }
func (h distHeap) Less(i, j int) bool { return h[i].d < h[j].d }
func (h distHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *distHeap) Push(x any)        { *h = append(*h, x.(distItem)) }
func (h *distHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// byID maps node IDs back to lab indices.
func (l *lab) byID() map[NodeID]int {
	m := map[NodeID]int{}
	for i, nd := range l.nodes {
		m[nd.id] = i
	}
	return m
}

// expectShortest checks every live pair: next hops reach the destination at
// the true shortest cost, and unreachable pairs have no next hop.
func (l *lab) expectShortest() {
	l.t.Helper()
	dist := l.truth()
	bad := 0
	for s, ns := range l.nodes {
		if ns.dead {
			continue
		}
		for d, nd := range l.nodes {
			if d == s || nd.dead {
				continue
			}
			cost, ok := l.walkPath(s, d)
			switch {
			case dist[s][d] == unreachable && ns.table.Reachable(nd.id):
				l.t.Errorf("node %d still reaches unreachable node %d", s, d)
				bad++
			case dist[s][d] != unreachable && (!ok || cost != dist[s][d]):
				l.t.Errorf("node %d to %d: arrived %v at cost %d, shortest %d", s, d, ok, cost, dist[s][d])
				bad++
			}
			if bad > 10 {
				l.t.FailNow()
			}
		}
	}
}

// walkPath follows next hops from s to d over the lab's links.
func (l *lab) walkPath(s, d int) (uint64, bool) {
	_, limit, ok := l.nodes[s].table.NextHop(l.nodes[d].id)
	if !ok {
		return 0, false
	}
	var cost uint64
	for at := s; at != d; limit-- {
		if limit == 0 {
			return cost, false
		}
		p, _, ok := l.nodes[at].table.NextHop(l.nodes[d].id)
		if !ok {
			return cost, false
		}
		lk := l.links[l.nodes[at].links[p]]
		if lk.down {
			return cost, false
		}
		cost += uint64(lk.cost)
		if lk.a == at {
			at = lk.b
		} else {
			at = lk.a
		}
	}
	return cost, true
}

// broadcast floods one multi-destination frame from ingress s through the
// current tables, as the data path does: out on MultiTargets, accepted only
// where AcceptMulti says so, the hop limit decremented per hop. It returns
// how many times each node received it, and the frames dropped by the
// reverse-path check and the hop limit.
func (l *lab) broadcast(s int, got []int) (rpf, hop int) {
	clear(got)
	type hopFrame struct {
		at    int
		from  Port
		limit uint8
	}
	sid := l.nodes[s].id
	var work []hopFrame
	forward := func(at int, except Port, limit uint8) {
		for _, p := range l.nodes[at].table.MultiTargets(sid) {
			if p == except {
				continue
			}
			lk := l.links[l.nodes[at].links[p]]
			if lk.down {
				continue
			}
			to, port := lk.b, lk.pb
			if lk.b == at {
				to, port = lk.a, lk.pa
			}
			work = append(work, hopFrame{to, port, limit})
		}
	}
	forward(s, 0, l.nodes[s].table.MultiHopLimit())
	for len(work) > 0 {
		f := work[0]
		work = work[1:]
		nd := l.nodes[f.at]
		switch {
		case nd.dead:
			continue
		case f.limit == 0:
			hop++
			continue
		case !nd.table.AcceptMulti(sid, f.from):
			rpf++
			continue
		}
		got[f.at]++
		if f.limit > 1 {
			forward(f.at, f.from, f.limit-1)
		} else if len(nd.table.MultiTargets(sid)) > 0 {
			hop++
		}
	}
	return rpf, hop
}

// noDuplicates is a check: a broadcast from every live node reaches every
// node at most once, and never comes back to its ingress.
func (l *lab) noDuplicates() {
	got := make([]int, len(l.nodes))
	for s, nd := range l.nodes {
		if nd.dead {
			continue
		}
		l.broadcast(s, got)
		for d, n := range got {
			if n > 1 || d == s && n > 0 {
				l.t.Fatalf("step %d: broadcast from %d reached %d %d times", l.steps, s, d, n)
			}
		}
	}
}

// expectBroadcastReach checks that a broadcast from every live node reaches
// every node of its component exactly once.
func (l *lab) expectBroadcastReach() {
	l.t.Helper()
	dist := l.truth()
	got := make([]int, len(l.nodes))
	for s, ns := range l.nodes {
		if ns.dead {
			continue
		}
		l.broadcast(s, got)
		for d, nd := range l.nodes {
			want := 0
			if d != s && !nd.dead && dist[s][d] != unreachable {
				want = 1
			}
			if got[d] != want {
				l.t.Fatalf("broadcast from %d reached %d %d times, want %d", s, d, got[d], want)
			}
		}
	}
}

func TestLabRing(t *testing.T) {
	const n = 8
	l := newLab(t, n, 1)
	l.check = l.noDuplicates
	for i := range n {
		l.connect(i, (i+1)%n, 10, 1)
	}
	for i := range l.links {
		l.up(i)
	}
	rounds := l.settle(10 * time.Second)
	t.Logf("ring of %d: converged %d steps (%v) after start", n, rounds, time.Duration(rounds)*l.step)
	l.expectShortest()
	l.expectBroadcastReach()

	// A cut: the ring becomes a line; every pair still reaches.
	l.cut(0)
	rounds = l.settle(10 * time.Second)
	t.Logf("link cut: reconverged in %d steps", rounds)
	l.expectShortest()
	l.expectBroadcastReach()
	if rounds > n+2 {
		t.Errorf("reconverged in %d steps, want at most %d (one flood across the line)", rounds, n+2)
	}

	// A node dies: the line breaks in two.
	l.kill(4)
	l.settle(10 * time.Second)
	l.expectShortest()
	l.expectBroadcastReach()

	// It comes back with an empty database and a new boot time; the cut
	// heals.
	l.run(2 * time.Second)
	l.restart(4)
	l.up(0)
	l.settle(10 * time.Second)
	l.expectShortest()
	l.expectBroadcastReach()
}

// fiveSites is the lab's five-sites topology with the round-trip times of
// its peerings (ms) as costs.
var fiveSitesNames = []string{"rho", "bob", "epsilon", "vorke", "pi0"}

func fiveSites(t *testing.T, seed uint64) *lab {
	l := newLab(t, 5, seed)
	const rho, bob, epsilon, vorke, pi0 = 0, 1, 2, 3, 4
	for _, p := range []struct {
		a, b int
		rtt  uint32
	}{{rho, bob, 8}, {rho, epsilon, 80}, {rho, vorke, 88}, {bob, epsilon, 80}, {epsilon, vorke, 20}, {rho, pi0, 24}} {
		l.connect(p.a, p.b, p.rtt, int(p.rtt/2/10)) // one-way delay in 10 ms steps
	}
	for i := range l.links {
		l.up(i)
	}
	return l
}

func TestLabFiveSites(t *testing.T) {
	l := fiveSites(t, 2)
	l.check = l.noDuplicates
	l.settle(20 * time.Second)
	l.expectShortest()
	l.expectBroadcastReach()
	id := func(name string) NodeID {
		for i, n := range fiveSitesNames {
			if n == name {
				return l.nodes[i].id
			}
		}
		t.Fatalf("no site %s", name)
		return 0
	}
	names := map[NodeID]string{}
	for i, n := range fiveSitesNames {
		names[l.nodes[i].id] = n
	}
	path := func(from int, to string) string {
		var s string
		for i, n := range l.nodes[from].table.Path(id(to)) {
			if i > 0 {
				s += "-"
			}
			s += names[n]
		}
		return s
	}
	for _, c := range []struct {
		from int
		to   string
		want string
	}{
		{2, "vorke", "epsilon-vorke"},     // 20 direct, not 168 through Paris
		{1, "epsilon", "bob-epsilon"},     // 80 direct beats 88 through rho
		{1, "vorke", "bob-rho-vorke"},     // 96 beats 100 through epsilon
		{4, "vorke", "pi0-rho-vorke"},     // 112 beats 124
		{3, "bob", "vorke-rho-bob"},       // the reverse of bob-rho-vorke
		{4, "epsilon", "pi0-rho-epsilon"}, // 104
		{0, "pi0", "rho-pi0"},             // the NAT'd site hangs off rho
		{3, "epsilon", "vorke-epsilon"},   // symmetric
		{2, "bob", "epsilon-bob"},         // symmetric
		{1, "pi0", "bob-rho-pi0"},         // through the hub
		{2, "pi0", "epsilon-rho-pi0"},     // 104 vs 112 via bob
		{0, "vorke", "rho-vorke"},         // 88 direct beats 100 via epsilon
		{0, "epsilon", "rho-epsilon"},     // 80 direct beats 88 via bob
		{3, "pi0", "vorke-rho-pi0"},       // 112
		{2, "rho", "epsilon-rho"},         // 80
		{1, "rho", "bob-rho"},             // 8
		{4, "bob", "pi0-rho-bob"},         // 32
		{3, "rho", "vorke-rho"},           // 88
		{4, "rho", "pi0-rho"},             // 24
		{0, "bob", "rho-bob"},             // 8
	} {
		if got := path(c.from, c.to); got != c.want {
			t.Errorf("%s to %s: %s, want %s", fiveSitesNames[c.from], c.to, got, c.want)
		}
	}

	// Cut epsilon-vorke: vorke's traffic to epsilon goes through rho.
	l.cut(4)
	rounds := l.settle(20 * time.Second)
	t.Logf("five-sites, epsilon-vorke cut: reconverged in %d steps (%v)", rounds, time.Duration(rounds)*l.step)
	l.expectShortest()
	if got := path(3, "epsilon"); got != "vorke-rho-epsilon" {
		t.Errorf("after the cut, vorke to epsilon: %s", got)
	}
	// rho dies: pi0 is alone; the others keep their direct links.
	l.kill(0)
	l.settle(20 * time.Second)
	l.expectShortest()
	l.expectBroadcastReach()
	if l.nodes[4].table.Reachable(id("bob")) {
		t.Errorf("pi0 still reaches bob with rho dead")
	}
}
