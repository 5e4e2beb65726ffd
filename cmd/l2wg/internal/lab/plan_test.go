package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustPlan(t *testing.T, name string) *Plan {
	t.Helper()
	top, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := MakePlan(top)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func routesOf(n *Node) string {
	var rs []string
	for _, r := range n.Routes {
		rs = append(rs, fmt.Sprintf("%s via %s dev %s", r.Dst, r.Via, r.Dev))
	}
	return strings.Join(rs, "; ")
}

func TestPlanTwoHypervisors(t *testing.T) {
	p := mustPlan(t, "two-hypervisors")
	if p.Loop {
		t.Error("Loop = true for two sites with one peering")
	}
	hv1, hv2, r := p.Node("hv1"), p.Node("hv2"), p.Node("router")
	if got := hv1.Ifaces[0]; got.Name != "router" || got.Prefix().String() != "10.0.1.1/24" || got.Peer.Addr.String() != "10.0.1.2" {
		t.Errorf("hv1's link: %s %s, router's end %s; want router 10.0.1.1/24, 10.0.1.2", got.Name, got.Prefix(), got.Peer.Addr)
	}
	if got, want := routesOf(hv1), "10.0.2.0/24 via 10.0.1.2 dev router"; got != want {
		t.Errorf("hv1's routes: %s; want %s", got, want)
	}
	if got := routesOf(r); got != "" {
		t.Errorf("router's routes: %s; want none (all connected)", got)
	}
	vms := map[string]string{}
	for _, v := range p.VMs {
		vms[v.Name] = v.Addr.String() + " on " + v.Site.Name + " port " + v.Port
	}
	want := map[string]string{
		"vm11": "192.168.77.11/24 on hv1 port pvm11", "vm12": "192.168.77.12/24 on hv1 port pvm12",
		"vm21": "192.168.77.21/24 on hv2 port pvm21", "vm22": "192.168.77.22/24 on hv2 port pvm22",
	}
	if fmt.Sprint(vms) != fmt.Sprint(want) {
		t.Errorf("VMs: %v\nwant %v", vms, want)
	}
	if len(p.Peerings) != 1 {
		t.Fatalf("%d peerings, want 1 (full mesh of two)", len(p.Peerings))
	}
	pe := p.Peerings[0]
	if pe.EndpointOfB.String() != "10.0.2.1:51820" || pe.EndpointOfA.String() != "10.0.1.1:51820" || pe.KeepaliveA != 0 || pe.KeepaliveB != 0 {
		t.Errorf("peering: %+v; want endpoints 10.0.2.1:51820 and 10.0.1.1:51820, no keepalive", pe)
	}
	if got := strings.Join(p.Namespaces(), " "); got != "router hv1 hv2 vm11 vm12 vm21 vm22" {
		t.Errorf("namespaces: %s", got)
	}
	_ = hv2
}

func TestPlanFiveSites(t *testing.T) {
	p := mustPlan(t, "five-sites")
	if !p.Loop {
		t.Error("Loop = false; the peerings rho-bob-epsilon close a loop")
	}
	pi0, nat, rho := p.Node("pi0"), p.Node("pi0-nat"), p.Node("rho")
	if pi0.BehindNAT != nat {
		t.Fatalf("pi0.BehindNAT = %v, want pi0-nat", pi0.BehindNAT)
	}
	for _, n := range p.Sites() {
		if n != pi0 && n.BehindNAT != nil {
			t.Errorf("%s is behind %s; only pi0 is behind NAT", n.Name, n.BehindNAT.Name)
		}
	}
	home := netip.MustParsePrefix("192.168.1.0/24")
	for _, n := range p.Nodes {
		for _, r := range n.Routes {
			if r.Dst == home {
				t.Errorf("%s routes to pi0's home network %s via %s: the NAT must hide it", n.Name, home, r.Via)
			}
		}
	}
	// pi0 reaches everything through its NAT router.
	for _, r := range pi0.Routes {
		if r.Via.String() != "192.168.1.1" || r.Dev != "pi0-nat" {
			t.Errorf("pi0 route %s via %s dev %s; want via 192.168.1.1 dev pi0-nat", r.Dst, r.Via, r.Dev)
		}
	}
	if len(pi0.Routes) != len(p.Links)-1 {
		t.Errorf("pi0 has %d routes, want one per link it is not on (%d)", len(pi0.Routes), len(p.Links)-1)
	}
	pe := p.Peering("rho", "pi0")
	if pe == nil {
		t.Fatal("no rho-pi0 peering")
	}
	peer, ep, ka := pe.Other(rho)
	if peer != pi0 || ep.IsValid() || ka != 0 {
		t.Errorf("rho's view of pi0: endpoint %v keepalive %d; want no endpoint, no keepalive", ep, ka)
	}
	peer, ep, ka = pe.Other(pi0)
	if peer != rho || ep.String() != "10.0.2.1:51820" || ka != 5 {
		t.Errorf("pi0's view of rho: endpoint %v keepalive %d; want 10.0.2.1:51820, keepalive 5", ep, ka)
	}
	if p.Peering("pi0", "bob") != nil {
		t.Error("pi0 peers with bob; it peers only with rho")
	}
	// rho (Paris) to vorke (Ottawa): 2 + 35 + 7 ms one way.
	if _, d, ok := p.reach(rho, p.Node("vorke")); !ok || d.Round(time.Millisecond) != 44*time.Millisecond {
		t.Errorf("rho -> vorke: %v, %v; want 44ms", d, ok)
	}
	if d := p.MaxPeeringDelay().Round(time.Millisecond); d != 44*time.Millisecond {
		t.Errorf("MaxPeeringDelay = %v, want 44ms (rho-vorke)", d)
	}
}

func TestPlanTriangleHasLoop(t *testing.T) {
	p := mustPlan(t, "triangle")
	if !p.Loop || len(p.Peerings) != 3 {
		t.Errorf("Loop = %v with %d peerings; want a loop of 3", p.Loop, len(p.Peerings))
	}
}

func TestPlanDirectLinkAndNATPairs(t *testing.T) {
	text := `
[[router]]
name = "r"
[[router]]
name = "n1"
nat = true
uplink = "r"
[[router]]
name = "n2"
nat = true
uplink = "r"
[[site]]
name = "a"
[[site]]
name = "b"
[[site]]
name = "c"
[[site]]
name = "d"
[[link]]
a = "a"
b = "r"
[[link]]
a = "b"
b = "r"
[[link]]
a = "a"
b = "b"
subnet = "172.16.0.0/30"
[[link]]
a = "n1"
b = "r"
[[link]]
a = "n1"
b = "c"
[[link]]
a = "n2"
b = "r"
[[link]]
a = "n2"
b = "d"
`
	top, err := Parse("t.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	p, err := MakePlan(top)
	if err != nil {
		t.Fatal(err)
	}
	// a and b share a link: they use it.
	if pe := p.Peering("a", "b"); pe.EndpointOfB.String() != "172.16.0.2:51820" || pe.EndpointOfA.String() != "172.16.0.1:51820" {
		t.Errorf("a-b endpoints %v %v; want the direct link's addresses", pe.EndpointOfB, pe.EndpointOfA)
	}
	// c and d are behind different NATs: the full mesh leaves them out.
	if p.Peering("c", "d") != nil {
		t.Error("c and d peer, but neither can reach the other")
	}
	if pe := p.Peering("a", "c"); pe == nil || pe.EndpointOfA.IsValid() == false || pe.EndpointOfB.IsValid() || pe.KeepaliveB != 5 {
		t.Errorf("a-c: %+v; want c to dial a with keepalive", pe)
	}
	top.Peerings = []Peering{{A: "c", B: "d"}}
	if _, err := MakePlan(top); err == nil || !strings.Contains(err.Error(), "neither site can reach") {
		t.Errorf("explicit peering c-d: %v; want an error", err)
	}
}

func TestPlanVMAddresses(t *testing.T) {
	text := `
vm_subnet = "10.9.0.0/24"
[[site]]
name = "s"
vms = ["web", "vm7", "db", "vm300"]
[[site.vm]]
name = "pinned"
address = "10.9.0.7"
`
	top, err := Parse("t.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	p, err := MakePlan(top)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range p.VMs {
		got[v.Name] = v.Addr.String()
	}
	// pinned takes .7, so vm7 cannot; numbered names that fit get their
	// number; the rest count up from .100.
	want := map[string]string{"pinned": "10.9.0.7/24", "web": "10.9.0.100/24", "vm7": "10.9.0.101/24", "db": "10.9.0.102/24", "vm300": "10.9.0.103/24"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("VM addresses %v\nwant %v", got, want)
	}
}

func TestRenderNodeConf(t *testing.T) {
	p := mustPlan(t, "five-sites")
	keys := map[string]keyPair{}
	for _, n := range p.Sites() {
		k, err := newKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		keys[n.Name] = k
	}
	rho := p.renderNodeConf(p.Node("rho"), keys, "node.key", nodeConfOptions{STP: true})
	for _, want := range []string{
		"private_key_file = 'node.key'", "[tap]\nname = 'l2wg0'\nbridge = 'br0'",
		"[stp]\npriority = 24576\nhello_time = '1s'\nmax_age = '6s'\nforward_delay = '4s'",
		"name = 'pi0'\npublic_key = '" + keys["pi0"].Public + "'\n", "# no endpoint for pi0",
		"name = 'epsilon'\npublic_key = '" + keys["epsilon"].Public + "'\nendpoint = '10.0.4.1:51820'\ncost = 400",
	} {
		if !strings.Contains(rho, want) {
			t.Errorf("rho's node.toml lacks %q:\n%s", want, rho)
		}
	}
	pi0 := p.renderNodeConf(p.Node("pi0"), keys, "node.key", nodeConfOptions{STP: true})
	if !strings.Contains(pi0, "endpoint = '10.0.2.1:51820'\npersistent_keepalive = 5") || strings.Count(pi0, "[[peer]]") != 1 {
		t.Errorf("pi0's node.toml: want one peer, rho, dialled with keepalive:\n%s", pi0)
	}
	noSTP := p.renderNodeConf(p.Node("rho"), keys, "node.key", nodeConfOptions{STP: false})
	if strings.Contains(noSTP, "stp") || strings.Contains(noSTP, "cost") {
		t.Errorf("without STP support the config still has stp settings:\n%s", noSTP)
	}
}

func TestKeyPair(t *testing.T) {
	k, err := newKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Private) != 44 || len(k.Public) != 44 || k.Private == k.Public {
		t.Errorf("key pair %q %q: want two different 44-character base64 keys", k.Private, k.Public)
	}
}

func TestSets(t *testing.T) {
	s := make(sets)
	for _, e := range [][2]string{{"a", "b"}, {"c", "d"}, {"b", "c"}} {
		if !s.union(e[0], e[1]) {
			t.Errorf("union(%s, %s) = false for two separate sets", e[0], e[1])
		}
	}
	if s.union("a", "d") {
		t.Error("union(a, d) = true: a-b-c-d are one set already")
	}
	if s.find("a") != s.find("d") || s.find("e") != "e" || s.find("a") == s.find("e") {
		t.Errorf("find: a=%s d=%s e=%s", s.find("a"), s.find("d"), s.find("e"))
	}
}
