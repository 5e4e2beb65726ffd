package lab

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLongestGapAndDuplicates(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	out := pingOutput(t0, at(3*time.Second), [2]time.Time{at(time.Second), at(1500 * time.Millisecond)})
	rs := parseReplies(out)
	if len(rs) < 200 {
		t.Fatalf("%d replies parsed", len(rs))
	}
	// From the failure at 1.2 s the first reply is at 1.5 s.
	if g := LongestGap(rs, at(1200*time.Millisecond), at(3*time.Second)); g < 299*time.Millisecond || g > 301*time.Millisecond {
		t.Errorf("gap from 1.2s = %v, want 300ms", g)
	}
	if g := LongestGap(rs, t0, at(3*time.Second)); g < 509*time.Millisecond || g > 511*time.Millisecond {
		t.Errorf("gap over the stream = %v, want 510ms", g)
	}
	// A stream that ends early: the gap runs to the end.
	if g := LongestGap(rs, t0, at(4*time.Second)); g < time.Second {
		t.Errorf("gap to a later end = %v, want over 1s", g)
	}
	if n := duplicates(rs); n != 0 {
		t.Errorf("%d duplicates in a clean stream", n)
	}
	dup := out + "[1800000002.000000] 64 bytes from 192.168.77.63: icmp_seq=20 ttl=64 time=0.5 ms (DUP!)\n" +
		"[1800000002.000100] 64 bytes from 192.168.77.64: icmp_seq=20 ttl=64 time=0.5 ms\n"
	rs = parseReplies(dup)
	if n := duplicates(rs); n != 1 {
		t.Errorf("duplicates = %d, want 1 (a second reply from .63 to request 20; .64's is another VM's)", n)
	}
	if !rs[len(rs)-2].dup || rs[len(rs)-1].dup {
		t.Errorf("DUP! marks: %v %v", rs[len(rs)-2].dup, rs[len(rs)-1].dup)
	}
}

func TestBestPaths(t *testing.T) {
	sites := []string{"rho", "bob", "epsilon", "vorke"}
	rtts := []PeeringRTT{
		{A: "rho", B: "bob", Measured: 8}, {A: "rho", B: "epsilon", Measured: 80},
		{A: "rho", B: "vorke", Measured: 88}, {A: "epsilon", B: "vorke", Measured: 20},
		{A: "bob", B: "epsilon", Measured: 0}, // no answer: not an edge
	}
	dist, paths := bestPaths(sites, rtts, [][]string{{"bob", "x"}})
	for _, tc := range []struct {
		a, b string
		d    float64
		path string
	}{
		{"epsilon", "vorke", 20, "epsilon-vorke"},
		{"bob", "epsilon", 88, "bob-rho-epsilon"},
		{"bob", "vorke", 96, "bob-rho-vorke"},
		{"vorke", "bob", 96, "vorke-rho-bob"},
	} {
		k := [2]string{tc.a, tc.b}
		if dist[k] != tc.d || strings.Join(paths[k], "-") != tc.path {
			t.Errorf("%s-%s: %.0f over %v, want %.0f over %s", tc.a, tc.b, dist[k], paths[k], tc.d, tc.path)
		}
	}
	if !withinBound(23.9, 20) || withinBound(24.1, 20) {
		t.Error("bound: want 1.1 x 20 + 2 = 24")
	}
}

func TestMeshTopologies(t *testing.T) {
	top, err := Load("ha-pair")
	if err != nil {
		t.Fatal(err)
	}
	p, err := MakePlan(top)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.LANs) != 1 || len(p.LANs[0].Sites) != 2 || !p.Loop || !p.sameLAN("a1", "a2") || p.sameLAN("a1", "b") {
		t.Errorf("ha-pair: LANs %v, loop %v; want one LAN a1+a2 closing a loop", p.LANs, p.Loop)
	}
	// With the key the topology's protocol goes to [mesh] protocol, and
	// rstp or stp there overrides the topology's [stp] protocol; without
	// it the spanning tree runs, rstp or stp as [stp] protocol.
	keys := map[string]keyPair{}
	for _, n := range p.Sites() {
		keys[n.Name] = keyPair{Public: "pub" + n.Name}
	}
	render := func() string {
		return p.renderNodeConf(p.Sites()[0], keys, "node.key", nodeConfOptions{STP: true})
	}
	if conf := render(); MeshProtocolKnown() && !strings.Contains(conf, "\n[mesh]\nprotocol = 'shortest-path'\n") {
		t.Errorf("ha-pair: node.toml without [mesh] protocol = 'shortest-path':\n%s", conf)
	}
	if !MeshProtocolKnown() && p.MeshProtocol() != ProtocolRSTP {
		t.Errorf("MeshProtocol = %s without the key, want rstp", p.MeshProtocol())
	}
	for _, proto := range []string{ProtocolSTP, ProtocolRSTP} {
		top.Mesh.Protocol = proto
		top.STP.Protocol = "rstp"
		conf := render()
		if MeshProtocolKnown() {
			if !strings.Contains(conf, "\n[mesh]\nprotocol = '"+proto+"'\n") || strings.Count(conf, "protocol = ") != 1 {
				t.Errorf("[mesh] protocol %s with [stp] protocol rstp: want only [mesh] protocol = %q:\n%s", proto, proto, conf)
			}
		} else if proto == ProtocolSTP && !strings.Contains(conf, "protocol = 'stp'") {
			t.Errorf("[mesh] protocol stp without the key: want [stp] protocol = \"stp\":\n%s", conf)
		}
		if p.MeshProtocol() != proto {
			t.Errorf("MeshProtocol = %s, want %s", p.MeshProtocol(), proto)
		}
	}
	// No [mesh] protocol: l2wg's default, and nothing in node.toml.
	top.Mesh.Protocol, top.STP.Protocol = "", ""
	if conf := render(); strings.Contains(conf, "[mesh]") {
		t.Errorf("no [mesh] protocol: want none in node.toml:\n%s", conf)
	}
	if want := DefaultMeshProtocol(); want == ProtocolShortestPath && p.MeshProtocol() != want || want != ProtocolShortestPath && p.MeshProtocol() == ProtocolShortestPath {
		t.Errorf("no [mesh] protocol: MeshProtocol = %s, l2wg's default %s", p.MeshProtocol(), want)
	}
	if err := top.SetMeshProtocol("ospf"); err == nil || !strings.Contains(err.Error(), "must be") {
		t.Errorf("SetMeshProtocol(ospf) = %v, want an error", err)
	}
	if err := top.SetMeshProtocol(ProtocolRSTP); err != nil || top.Mesh.Protocol != ProtocolRSTP {
		t.Errorf("SetMeshProtocol(rstp) = %v, protocol %q", err, top.Mesh.Protocol)
	}
	for _, name := range []string{"five-sites-full", "twelve-sites"} {
		top, err := Load(name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := MakePlan(top)
		if err != nil {
			t.Fatal(err)
		}
		if !top.Checks.ShortestPaths || top.Mesh.Protocol != ProtocolShortestPath {
			t.Errorf("%s: shortest_paths %v, protocol %q", name, top.Checks.ShortestPaths, top.Mesh.Protocol)
		}
		deg := map[string]int{}
		for _, pe := range p.Peerings {
			deg[pe.A.Name]++
			deg[pe.B.Name]++
		}
		t.Logf("%s: %d sites, %d peerings, degrees %v", name, len(p.Sites()), len(p.Peerings), deg)
		if name == "five-sites-full" && len(p.Peerings) != 10 {
			t.Errorf("five-sites-full: %d peerings, want 10", len(p.Peerings))
		}
		if name == "twelve-sites" {
			for s, d := range deg {
				if d < 2 || d > 4 {
					t.Errorf("twelve-sites: %s has degree %d, want 2-4", s, d)
				}
			}
		}
	}
	if _, err := Parse("x.toml", []byte(minimal+"[mesh]\nprotocol = \"ospf\"\n")); err == nil || !strings.Contains(err.Error(), "mesh.protocol") {
		t.Errorf("bad protocol: %v", err)
	}
	if _, err := Parse("x.toml", []byte(strings.Replace(minimal, `vms = ["vm11"]`, `vms = ["vm11"]`+"\nlan = \"solo\"", 1))); err == nil || !strings.Contains(err.Error(), "no other site") {
		t.Errorf("a LAN of one site: %v", err)
	}
}

// A pinger starved of CPU sends nothing for a while: the gap before the
// next reply, which answers the very next request in a round trip of
// 0.5 ms, is not the network's. A lost request or a long round trip is.
func TestLongestGapStarvedPinger(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	line := func(d time.Duration, seq int, rtt string) string {
		ts := at(d)
		return fmt.Sprintf("[%d.%06d] 64 bytes from 192.168.77.63: icmp_seq=%d ttl=64 time=%s ms\n", ts.Unix(), ts.Nanosecond()/1000, seq, rtt)
	}
	for _, tc := range []struct {
		name string
		out  string
		want time.Duration
	}{
		{"starved", line(0, 1, "0.5") + line(10*time.Millisecond, 2, "0.5") + line(745*time.Millisecond, 3, "0.478") + line(755*time.Millisecond, 4, "0.5"), 10 * time.Millisecond},
		{"held by the network", line(0, 1, "0.5") + line(10*time.Millisecond, 2, "0.5") + line(745*time.Millisecond, 3, "730") + line(755*time.Millisecond, 4, "0.5"), 730 * time.Millisecond},
		{"requests lost", line(0, 1, "0.5") + line(10*time.Millisecond, 2, "0.5") + line(745*time.Millisecond, 60, "0.5") + line(755*time.Millisecond, 61, "0.5"), 735 * time.Millisecond},
	} {
		rs := parseReplies(tc.out)
		if len(rs) != 4 {
			t.Fatalf("%s: %d replies parsed", tc.name, len(rs))
		}
		if g := LongestGap(rs, t0, at(760*time.Millisecond)); g < tc.want-time.Millisecond || g > tc.want+time.Millisecond {
			t.Errorf("%s: longest gap %v, want %v", tc.name, g, tc.want)
		}
	}
}

// TestLongestLoss: the loss leaves out the round trip of the path traffic
// moved to; duplicates and requests answered before the failure count
// for nothing.
func TestLongestLoss(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	line := func(d time.Duration, seq int, rtt string) string {
		ts := at(d)
		return fmt.Sprintf("[%d.%06d] 64 bytes from 192.168.77.63: icmp_seq=%d ttl=64 time=%s ms\n", ts.Unix(), ts.Nanosecond()/1000, seq, rtt)
	}
	// 10 ms requests on a 22 ms path; the path fails at 1 s; request 131
	// (sent at 1.3 s) is the first answered, over a 180 ms detour.
	var out strings.Builder
	for seq := 1; seq <= 97; seq++ { // the last reply at 0.992 s
		out.WriteString(line(time.Duration(seq)*10*time.Millisecond+22*time.Millisecond, seq, "22"))
	}
	for seq := 131; seq <= 200; seq++ {
		out.WriteString(line(time.Duration(seq)*10*time.Millisecond+180*time.Millisecond, seq, "180"))
		if seq == 131 {
			out.WriteString(line(1491*time.Millisecond, 131, "181")) // a duplicate, not marked
		}
	}
	rs := parseReplies(out.String())
	failed, end := at(time.Second), at(2*time.Second)
	if l := LongestLoss(rs, failed, end); l < 309*time.Millisecond || l > 311*time.Millisecond {
		t.Errorf("loss %v, want 310 ms (from the failure at 1 s to request 131 sent at 1.31 s)", l)
	}
	if g := LongestGap(rs, failed, end); g < 489*time.Millisecond || g > 491*time.Millisecond {
		t.Errorf("gap %v, want 490 ms (the reply to 131 at 1.49 s)", g)
	}
	if l := LongestLoss(rs, failed, at(3*time.Second)); l < time.Second-time.Millisecond {
		t.Errorf("loss %v to an end a second after the last request, want 1 s", l)
	}
	if l := LongestLoss(nil, failed, end); l != time.Second {
		t.Errorf("loss %v with no reply, want the whole second", l)
	}
}
