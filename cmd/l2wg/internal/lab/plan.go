package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
)

// A Plan is a topology worked out: interface names, addresses, static
// routes, NAT boundaries, VM addresses, and for every peering which side
// knows the other's endpoint. It is a pure function of the topology, so
// every invocation of l2wg lab that reads the same file sees the same plan.
type Plan struct {
	Topo     *Topology
	Nodes    []*Node // routers, then sites, as declared
	Links    []*PlannedLink
	VMs      []*PlannedVM
	Peerings []*PlannedPeering
	// Loop reports that the peerings contain a cycle: without a spanning
	// tree, broadcast frames would circle forever.
	Loop bool
	// LANs are the LANs several sites' VM bridges share (lan.go).
	LANs []*PlannedLAN

	byName map[string]*Node
	vmByNm map[string]*PlannedVM
}

// A Node is a router or a site namespace.
type Node struct {
	Name   string
	Router bool
	NAT    bool  // a NAT router
	Site   *Site // nil for routers
	Ifaces []*Iface
	VMs    []*PlannedVM
	Routes []Route
	// BehindNAT is the NAT router whose inside a site is on: the site has no
	// address its peers outside can reach.
	BehindNAT *Node

	inside map[*Node]bool // for NAT routers: the nodes on their inside
}

// An Iface is one end of a link.
type Iface struct {
	Name string
	Node *Node
	Link *PlannedLink
	Addr netip.Addr
	Peer *Iface // the other end
}

// Prefix is the address with the link's prefix length.
func (i *Iface) Prefix() netip.Prefix { return netip.PrefixFrom(i.Addr, i.Link.Subnet.Bits()) }

// A PlannedLink is an underlay link with its addresses.
type PlannedLink struct {
	Index   int // 0-based, as declared
	A, B    *Iface
	Subnet  netip.Prefix
	MTU     int
	Impair  Impairment
	Relayed bool // two TAPs and the relay; otherwise a veth pair
}

// Name is "a-b".
func (l *PlannedLink) Name() string { return l.A.Node.Name + "-" + l.B.Node.Name }

// A Route is a static underlay route of a node.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
	Dev string
}

// A PlannedVM is a VM namespace on its site's br0.
type PlannedVM struct {
	Name string
	Site *Node
	Addr netip.Prefix
	Port string // its veth end in the site's br0
}

// A PlannedPeering is a pair of peered sites. EndpointOfB is what A's
// node.toml says for B (invalid: none), and so on.
type PlannedPeering struct {
	A, B        *Node
	Cost        int
	EndpointOfB netip.AddrPort
	EndpointOfA netip.AddrPort
	KeepaliveA  int // A's persistent_keepalive toward B
	KeepaliveB  int
}

// Other returns the peer of site n in the peering, and n's view of it:
// the endpoint n has for it and n's keepalive toward it.
func (p *PlannedPeering) Other(n *Node) (peer *Node, endpoint netip.AddrPort, keepalive int) {
	if p.A == n {
		return p.B, p.EndpointOfB, p.KeepaliveA
	}
	return p.A, p.EndpointOfA, p.KeepaliveB
}

// Node returns the node called name, or nil.
func (p *Plan) Node(name string) *Node { return p.byName[name] }

// VM returns the VM called name, or nil.
func (p *Plan) VM(name string) *PlannedVM { return p.vmByNm[name] }

// Sites returns the site nodes in declaration order.
func (p *Plan) Sites() []*Node {
	var s []*Node
	for _, n := range p.Nodes {
		if !n.Router {
			s = append(s, n)
		}
	}
	return s
}

// Namespaces returns every namespace the lab makes, in creation order.
func (p *Plan) Namespaces() []string {
	var ns []string
	for _, n := range p.Nodes {
		ns = append(ns, n.Name)
	}
	for _, v := range p.VMs {
		ns = append(ns, v.Name)
	}
	if p.Relayed() {
		ns = append(ns, relayNS)
	}
	return ns
}

// Relayed reports whether any link goes through the relay.
func (p *Plan) Relayed() bool {
	for _, l := range p.Links {
		if l.Relayed {
			return true
		}
	}
	return false
}

// LinksBetween returns the links that join nodes a and b.
func (p *Plan) LinksBetween(a, b string) []*PlannedLink {
	var ls []*PlannedLink
	for _, l := range p.Links {
		if (l.A.Node.Name == a && l.B.Node.Name == b) || (l.A.Node.Name == b && l.B.Node.Name == a) {
			ls = append(ls, l)
		}
	}
	return ls
}

// Peering returns the peering of sites a and b, or nil.
func (p *Plan) Peering(a, b string) *PlannedPeering {
	for _, pe := range p.Peerings {
		if (pe.A.Name == a && pe.B.Name == b) || (pe.A.Name == b && pe.B.Name == a) {
			return pe
		}
	}
	return nil
}

// relayNS is the namespace the relay process runs in, so that deleting the
// lab's namespaces also ends it.
const relayNS = "relay"

// defaultListenPort is l2wg's.
const defaultListenPort = config.DefaultListenPort

// MakePlan works out a validated topology.
func MakePlan(t *Topology) (*Plan, error) {
	p := &Plan{Topo: t, byName: make(map[string]*Node), vmByNm: make(map[string]*PlannedVM)}
	for _, r := range t.Routers {
		n := &Node{Name: r.Name, Router: true, NAT: r.NAT}
		p.Nodes = append(p.Nodes, n)
		p.byName[n.Name] = n
	}
	for i := range t.Sites {
		n := &Node{Name: t.Sites[i].Name, Site: &t.Sites[i]}
		p.Nodes = append(p.Nodes, n)
		p.byName[n.Name] = n
	}
	if err := p.planLinks(); err != nil {
		return nil, err
	}
	if err := p.planVMs(); err != nil {
		return nil, err
	}
	p.planNAT()
	for _, n := range p.Nodes {
		p.planRoutes(n)
	}
	if err := p.planPeerings(); err != nil {
		return nil, err
	}
	p.planLANs()
	return p, nil
}

func (p *Plan) planLinks() error {
	t := p.Topo
	used := []netip.Prefix{t.vmSubnet}
	for i := range t.Links {
		tl := &t.Links[i]
		l := &PlannedLink{Index: i, MTU: tl.MTU, Impair: t.impair[i]}
		l.Relayed = tl.Relay || !l.Impair.IsZero()
		if tl.Subnet != "" {
			l.Subnet = netip.MustParsePrefix(tl.Subnet).Masked()
		} else {
			n := i + 1
			l.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(n >> 8), byte(n), 0}), 24)
		}
		for _, u := range used {
			if u.Overlaps(l.Subnet) {
				return fmt.Errorf("link[%d] %s-%s: subnet %s overlaps %s", i+1, tl.A, tl.B, l.Subnet, u)
			}
		}
		used = append(used, l.Subnet)
		a, b := p.byName[tl.A], p.byName[tl.B]
		base := l.Subnet.Addr()
		l.A = &Iface{Node: a, Link: l, Addr: base.Next()}
		l.B = &Iface{Node: b, Link: l, Addr: base.Next().Next()}
		l.A.Peer, l.B.Peer = l.B, l.A
		a.Ifaces = append(a.Ifaces, l.A)
		b.Ifaces = append(b.Ifaces, l.B)
		p.Links = append(p.Links, l)
	}
	// Name each end after the node at the other end; a second link to the
	// same node gets a number.
	for _, n := range p.Nodes {
		count := make(map[string]int)
		for _, i := range n.Ifaces {
			peer := i.Peer.Node.Name
			count[peer]++
			i.Name = peer
			if k := count[peer]; k > 1 {
				if k > 9 {
					return fmt.Errorf("%s: more than 9 links to %s", n.Name, peer)
				}
				i.Name = peer + strconv.Itoa(k)
			}
		}
	}
	return nil
}

func (p *Plan) planVMs() error {
	t := p.Topo
	taken := map[netip.Addr]string{t.vmSubnet.Addr(): "the subnet's own address"}
	size := 1 << (32 - t.vmSubnet.Bits())
	bcast := hostN(t.vmSubnet, size-1)
	taken[bcast] = "the broadcast address"
	type want struct {
		name string
		site *Node
		addr netip.Addr // valid: explicit
	}
	var wants []want
	for _, n := range p.Nodes {
		if n.Site == nil {
			continue
		}
		for _, v := range n.Site.VMs {
			wants = append(wants, want{name: v, site: n})
		}
		for _, v := range n.Site.VM {
			w := want{name: v.Name, site: n}
			if v.Address != "" {
				s := v.Address
				if !strings.Contains(s, "/") {
					s += "/" + strconv.Itoa(t.vmSubnet.Bits())
				}
				pf, err := netip.ParsePrefix(s)
				if err != nil || !t.vmSubnet.Contains(pf.Addr()) {
					return fmt.Errorf("vm %s: address %q: want an address in vm_subnet %s", v.Name, v.Address, t.vmSubnet)
				}
				if by, ok := taken[pf.Addr()]; ok {
					return fmt.Errorf("vm %s: address %s is already %s", v.Name, pf.Addr(), by)
				}
				w.addr = pf.Addr()
				taken[w.addr] = "vm " + v.Name + "'s"
			}
			wants = append(wants, w)
		}
	}
	// Names that end in a number get that host number when it is free.
	for i := range wants {
		w := &wants[i]
		if w.addr.IsValid() {
			continue
		}
		if k, ok := trailingNumber(w.name); ok && k > 0 && k < size-1 {
			if a := hostN(t.vmSubnet, k); taken[a] == "" {
				w.addr = a
				taken[a] = "vm " + w.name + "'s"
			}
		}
	}
	next := min(100, size/2)
	for i := range wants {
		w := &wants[i]
		for !w.addr.IsValid() {
			if next >= size-1 {
				return fmt.Errorf("vm_subnet %s: no free address for vm %s", t.vmSubnet, w.name)
			}
			if a := hostN(t.vmSubnet, next); taken[a] == "" {
				w.addr = a
				taken[a] = "vm " + w.name + "'s"
			}
			next++
		}
		v := &PlannedVM{Name: w.name, Site: w.site, Addr: netip.PrefixFrom(w.addr, t.vmSubnet.Bits()), Port: "p" + w.name}
		for _, i := range w.site.Ifaces {
			if i.Name == v.Port {
				return fmt.Errorf("site %s: the port of vm %s would be called %s, as its link to node %s: rename one", w.site.Name, v.Name, v.Port, i.Peer.Node.Name)
			}
		}
		w.site.VMs = append(w.site.VMs, v)
		p.VMs = append(p.VMs, v)
		p.vmByNm[v.Name] = v
	}
	return nil
}

// hostN is the k-th address of prefix p.
func hostN(p netip.Prefix, k int) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(k)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// trailingNumber returns the number a name ends in ("vm21" -> 21).
func trailingNumber(name string) (int, bool) {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	if i == len(name) || len(name)-i > 6 {
		return 0, false
	}
	k, err := strconv.Atoi(name[i:])
	return k, err == nil
}

// isUplink reports whether i is an uplink of its NAT router.
func (p *Plan) isUplink(i *Iface) bool {
	return i.Node.NAT && i.Peer.Node.Name == p.uplinkOf(i.Node)
}

func (p *Plan) uplinkOf(n *Node) string {
	for _, r := range p.Topo.Routers {
		if r.Name == n.Name {
			return r.Uplink
		}
	}
	return ""
}

// planNAT finds the inside of every NAT router: what it reaches through its
// non-uplink links, through routers but not through sites.
func (p *Plan) planNAT() {
	for _, r := range p.Nodes {
		if !r.NAT {
			continue
		}
		r.inside = make(map[*Node]bool)
		queue := []*Node{r}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for _, i := range u.Ifaces {
				if u == r && p.isUplink(i) {
					continue
				}
				v := i.Peer.Node
				if v == r || r.inside[v] {
					continue
				}
				r.inside[v] = true
				if v.Router {
					queue = append(queue, v)
				}
			}
		}
		for v := range r.inside {
			if v.Site != nil && v.BehindNAT == nil {
				v.BehindNAT = r
			}
		}
	}
}

// mayCross reports whether traffic from src may leave router u through i:
// a NAT router lets only its own inside (and itself) through to its inside.
func (p *Plan) mayCross(src, u *Node, i *Iface) bool {
	if !u.NAT || p.isUplink(i) {
		return true
	}
	return src == u || u.inside[src]
}

// distances runs Dijkstra from src over the underlay: only src itself and
// routers forward. It returns each reached node's distance and the
// interface of src the path leaves by.
func (p *Plan) distances(src *Node) (map[*Node]time.Duration, map[*Node]*Iface) {
	const hop = time.Microsecond // makes fewer hops win a tie
	dist := map[*Node]time.Duration{src: 0}
	first := map[*Node]*Iface{}
	done := map[*Node]bool{}
	for {
		var u *Node
		for _, n := range p.Nodes { // declaration order: deterministic ties
			if d, ok := dist[n]; ok && !done[n] && (u == nil || d < dist[u]) {
				u = n
			}
		}
		if u == nil {
			return dist, first
		}
		done[u] = true
		if u != src && !u.Router {
			continue
		}
		for _, i := range u.Ifaces {
			if !p.mayCross(src, u, i) {
				continue
			}
			v := i.Peer.Node
			d := dist[u] + i.Link.Impair.Delay + hop
			if old, ok := dist[v]; ok && old <= d {
				continue
			}
			dist[v] = d
			if u == src {
				first[v] = i
			} else {
				first[v] = first[u]
			}
		}
	}
}

// planRoutes gives n a route to every link subnet it is not on that a
// router it can reach delivers to.
func (p *Plan) planRoutes(n *Node) {
	dist, first := p.distances(n)
	for _, l := range p.Links {
		if l.A.Node == n || l.B.Node == n {
			continue
		}
		var best *Node
		for _, end := range []*Iface{l.A, l.B} {
			x := end.Node
			if _, ok := dist[x]; !ok || !x.Router || !p.mayCross(n, x, end) {
				continue
			}
			if best == nil || dist[x] < dist[best] {
				best = x
			}
		}
		if best == nil {
			continue
		}
		fi := first[best]
		n.Routes = append(n.Routes, Route{Dst: l.Subnet, Via: fi.Peer.Addr, Dev: fi.Name})
	}
}

// reach returns the address of site b that site a should use, and its
// underlay distance; ok is false when a cannot reach b.
func (p *Plan) reach(a, b *Node) (netip.Addr, time.Duration, bool) {
	for _, i := range a.Ifaces {
		if i.Peer.Node == b {
			return i.Peer.Addr, i.Link.Impair.Delay, true
		}
	}
	dist, _ := p.distances(a)
	var (
		addr netip.Addr
		best time.Duration
	)
	for _, i := range b.Ifaces {
		routed := false
		for _, r := range a.Routes {
			routed = routed || r.Dst == i.Link.Subnet
		}
		if !routed {
			continue
		}
		x := i.Peer.Node // the router that delivers to b on this link
		d, ok := dist[x]
		if !ok {
			continue
		}
		d += i.Link.Impair.Delay
		if !addr.IsValid() || d < best {
			addr, best = i.Addr, d
		}
	}
	return addr, best, addr.IsValid()
}

func (p *Plan) planPeerings() error {
	t := p.Topo
	type pair struct {
		a, b *Node
		cost int
	}
	var pairs []pair
	explicit := len(t.Peerings) > 0
	if explicit {
		for _, pe := range t.Peerings {
			pairs = append(pairs, pair{p.byName[pe.A], p.byName[pe.B], pe.Cost})
		}
	} else {
		sites := p.Sites()
		for i := range sites {
			for j := i + 1; j < len(sites); j++ {
				pairs = append(pairs, pair{a: sites[i], b: sites[j]})
			}
		}
	}
	port := func(n *Node) uint16 {
		if n.Site.ListenPort != 0 {
			return uint16(n.Site.ListenPort)
		}
		return defaultListenPort
	}
	joined := make(sets) // a peering within one set closes a loop
	for _, pr := range pairs {
		pe := &PlannedPeering{A: pr.a, B: pr.b, Cost: pr.cost}
		if addr, _, ok := p.reach(pr.a, pr.b); ok {
			pe.EndpointOfB = netip.AddrPortFrom(addr, port(pr.b))
		}
		if addr, _, ok := p.reach(pr.b, pr.a); ok {
			pe.EndpointOfA = netip.AddrPortFrom(addr, port(pr.a))
		}
		switch {
		case !pe.EndpointOfB.IsValid() && !pe.EndpointOfA.IsValid():
			if !explicit {
				continue // a full mesh leaves out pairs that cannot meet
			}
			return fmt.Errorf("peering %s-%s: neither site can reach the other's underlay address (both behind NAT?)", pr.a.Name, pr.b.Name)
		case !pe.EndpointOfA.IsValid():
			pe.KeepaliveA = t.L2WG.Keepalive // A dials B, B cannot answer first
		case !pe.EndpointOfB.IsValid():
			pe.KeepaliveB = t.L2WG.Keepalive
		}
		if !joined.union(pr.a.Name, pr.b.Name) {
			p.Loop = true
		}
		p.Peerings = append(p.Peerings, pe)
	}
	if len(p.Sites()) > 1 && len(p.Peerings) == 0 {
		return errors.New("no two sites can peer: give the sites underlay links that reach one another")
	}
	return nil
}

// MaxPeeringDelay is the longest one-way underlay delay between two peered
// sites.
func (p *Plan) MaxPeeringDelay() time.Duration {
	var d time.Duration
	for _, pe := range p.Peerings {
		for _, pair := range [][2]*Node{{pe.A, pe.B}, {pe.B, pe.A}} {
			if _, dist, ok := p.reach(pair[0], pair[1]); ok {
				d = max(d, dist)
			}
		}
	}
	return d
}

// sets is a union-find over names: which sites peerings join.
type sets map[string]string

// find returns the name that stands for x's set.
func (s sets) find(x string) string {
	for {
		parent, ok := s[x]
		if !ok {
			return x
		}
		x = parent
	}
}

// union joins the sets of a and b and reports whether they were apart.
func (s sets) union(a, b string) bool {
	ra, rb := s.find(a), s.find(b)
	if ra == rb {
		return false
	}
	s[ra] = rb
	return true
}
