package bridge

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge/mesh"
)

// A meshNet is several Bridges, each with a TAP (a fakePort) and a MeshPort,
// whose links are in-memory queues; real mesh.Machines compute the tables
// from control messages delivered in memory.

type meshNode struct {
	name  string
	b     *Bridge
	mp    *MeshPort
	tap   *fakePort
	tapID PortID
	m     *mesh.Machine
	key   mesh.Key
	peer  map[mesh.Port]int // link -> neighbour index
	port  map[int]mesh.Port // neighbour index -> link
	dead  bool
}

type inFlight struct {
	to   int
	link mesh.Port
	f    Frame
}

type meshNet struct {
	t     testing.TB
	clock *fakeClock
	nodes []*meshNode
	wire  []inFlight
	used  map[[2]string]int // frames carried per directed link
}

// linkDev is one direction of a link: what the MeshPort writes to it is
// copied onto the wire.
type linkDev struct {
	n        *meshNet
	from, to int
}

func (d *linkDev) WriteFrames(frames []Frame) {
	for _, f := range frames {
		d.n.wire = append(d.n.wire, inFlight{d.to, d.n.nodes[d.to].port[d.from],
			Frame{Offload: f.Offload, Data: append(bytes.Clone(f.Head), f.Data...)}})
		d.n.used[[2]string{d.n.nodes[d.from].name, d.n.nodes[d.to].name}]++
	}
}

func newMeshNet(t testing.TB, names ...string) *meshNet {
	n := &meshNet{t: t, clock: newFakeClock(), used: map[[2]string]int{}}
	for i, name := range names {
		nd := &meshNode{name: name, tap: new(fakePort), peer: map[mesh.Port]int{}, port: map[int]mesh.Port{}}
		nd.key[0], nd.key[1] = 0xb7, byte(i)
		m, err := mesh.New(mesh.Config{Key: nd.key, SPFHold: -1, OriginateHold: -1}, n.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		nd.m = m
		nd.b = New(Config{Clock: n.clock, Logger: discardLogger()})
		nd.tapID = nd.b.AddPort("tap", nd.tap)
		nd.mp = nd.b.AttachMesh(m.ID())
		nd.mp.SetControlHandler(func(from mesh.Port, msg []byte) {
			n.control(i, nd.m.Receive(from, msg, n.clock.Now()))
		})
		n.nodes = append(n.nodes, nd)
	}
	return n
}

func (n *meshNet) idx(name string) int {
	for i, nd := range n.nodes {
		if nd.name == name {
			return i
		}
	}
	n.t.Fatalf("no node %s", name)
	return -1
}

// firstTestLink is the first link number, apart from the switch's port
// IDs as the node's are (Bridge.SetVLANFilter tells them apart).
const firstTestLink = 256

// link connects a and b at cost and tells both machines.
func (n *meshNet) link(a, b string, cost uint32) {
	ia, ib := n.idx(a), n.idx(b)
	na, nb := n.nodes[ia], n.nodes[ib]
	pa, pb := firstTestLink+mesh.Port(len(na.peer)), firstTestLink+mesh.Port(len(nb.peer))
	na.peer[pa], na.port[ib] = ib, pa
	nb.peer[pb], nb.port[ia] = ia, pb
	na.mp.AddLink(pa, b, &linkDev{n, ia, ib})
	nb.mp.AddLink(pb, a, &linkDev{n, ib, ia})
	n.control(ia, na.m.AdjacencyUp(pa, nb.key, cost, n.clock.Now()))
	n.control(ib, nb.m.AdjacencyUp(pb, na.key, cost, n.clock.Now()))
	n.pump()
}

// kill stops node name: its neighbours see their adjacencies go down.
func (n *meshNet) kill(name string) {
	i := n.idx(name)
	n.nodes[i].dead = true
	for j, nd := range n.nodes {
		if p, ok := nd.port[i]; ok && !nd.dead {
			n.control(j, nd.m.AdjacencyDown(p, n.clock.Now()))
		}
	}
}

// control carries out a machine's actions: messages go over the links as
// control frames (delivered by pump), tables into the mesh port.
func (n *meshNet) control(i int, acts []mesh.Action) {
	for _, a := range acts {
		switch a.Kind {
		case mesh.Send:
			n.nodes[i].mp.SendControl(a.Port, a.Msg)
		case mesh.TablesChanged:
			n.nodes[i].mp.SetTable(a.Table)
		}
	}
}

// converge ticks every machine through the sync timeout and a few summary
// intervals.
func (n *meshNet) converge() {
	for range 50 {
		n.clock.Advance(100 * time.Millisecond)
		for i, nd := range n.nodes {
			if !nd.dead {
				n.control(i, nd.m.Tick(n.clock.Now()))
			}
		}
		n.pump()
	}
	clear(n.used)
}

// pump delivers the frames on the wire until none is left.
func (n *meshNet) pump() {
	for steps := 0; len(n.wire) > 0; steps++ {
		if steps > 100000 {
			n.t.Fatal("frames still circulating after 100000 deliveries")
		}
		d := n.wire[0]
		n.wire = n.wire[1:]
		if nd := n.nodes[d.to]; !nd.dead {
			nd.mp.InputFromLink(d.link, []Frame{d.f})
		}
	}
}

func vmMAC(i int) MAC { return MAC{2, 0, 0, 0, 0xaa, byte(i)} }

func ethFrame(dst, src MAC, payload string) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f, dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], 0x88b5)
	return append(f, payload...)
}

// fromVM sends a frame into node name's TAP port and delivers it.
func (n *meshNet) fromVM(name string, data []byte) {
	nd := n.nodes[n.idx(name)]
	nd.b.Input(nd.tapID, []Frame{{Data: data}})
	n.pump()
}

// tapsGot returns how many copies of data each node's TAP was handed.
func (n *meshNet) tapsGot(data []byte) map[string]int {
	got := map[string]int{}
	for _, nd := range n.nodes {
		for _, w := range nd.tap.takeFrames() {
			if bytes.Equal(w.Data, data) {
				got[nd.name]++
			}
		}
	}
	return got
}

func fiveSitesMesh(t testing.TB) *meshNet {
	n := newMeshNet(t, "rho", "bob", "epsilon", "vorke", "pi0")
	// costs: the peerings' round-trip times in ms
	n.link("rho", "bob", 8)
	n.link("rho", "epsilon", 80)
	n.link("rho", "vorke", 88)
	n.link("bob", "epsilon", 80)
	n.link("epsilon", "vorke", 20)
	n.link("rho", "pi0", 24)
	n.converge()
	return n
}

var broadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// TestMeshForwarding: on five-sites, a broadcast reaches every other TAP
// once over a tree of four links, and unicast takes the shortest path by
// header (epsilon and vorke talk over their direct link, not through Paris).
func TestMeshForwarding(t *testing.T) {
	n := fiveSitesMesh(t)
	for i, name := range []string{"rho", "bob", "epsilon", "vorke", "pi0"} {
		clear(n.used)
		bc := ethFrame(broadcastMAC, vmMAC(i), "hello from "+name)
		n.fromVM(name, bc)
		got := n.tapsGot(bc)
		for _, other := range []string{"rho", "bob", "epsilon", "vorke", "pi0"} {
			want := 1
			if other == name {
				want = 0
			}
			if got[other] != want {
				t.Errorf("broadcast from %s: %s's TAP got %d copies, want %d", name, other, got[other], want)
			}
		}
		total := 0
		for _, c := range n.used {
			total += c
		}
		if total != 4 {
			t.Errorf("broadcast from %s crossed %d links, want 4 (a tree of five nodes): %v", name, total, n.used)
		}
	}
	// Every VM is now learned everywhere. vorke -> epsilon: one link.
	for _, c := range []struct {
		from, to int
		fromName string
		want     map[[2]string]int
	}{
		{3, 2, "vorke", map[[2]string]int{{"vorke", "epsilon"}: 1}},
		{2, 3, "epsilon", map[[2]string]int{{"epsilon", "vorke"}: 1}},
		{1, 2, "bob", map[[2]string]int{{"bob", "epsilon"}: 1}},
		{1, 3, "bob", map[[2]string]int{{"bob", "rho"}: 1, {"rho", "vorke"}: 1}},
		{4, 3, "pi0", map[[2]string]int{{"pi0", "rho"}: 1, {"rho", "vorke"}: 1}},
		{3, 4, "vorke", map[[2]string]int{{"vorke", "rho"}: 1, {"rho", "pi0"}: 1}},
	} {
		clear(n.used)
		uc := ethFrame(vmMAC(c.to), vmMAC(c.from), "unicast")
		n.fromVM(c.fromName, uc)
		got := n.tapsGot(uc)
		toName := n.nodes[c.to].name
		if len(got) != 1 || got[toName] != 1 {
			t.Errorf("unicast %s -> %s: TAPs got %v", c.fromName, toName, got)
		}
		if len(n.used) != len(c.want) {
			t.Errorf("unicast %s -> %s crossed %v, want %v", c.fromName, toName, n.used, c.want)
		}
		for k, v := range c.want {
			if n.used[k] != v {
				t.Errorf("unicast %s -> %s crossed %v, want %v", c.fromName, toName, n.used, c.want)
			}
		}
	}
	if st := n.nodes[n.idx("rho")].mp.Stats(); st.Transit == 0 || st.HopLimit != 0 || st.ReversePath != 0 || st.ControlIn == 0 {
		t.Errorf("rho's mesh counters: %+v", st)
	}
}

// TestMeshDrops: an exhausted hop limit and a multi-destination frame off
// its tree are dropped and counted, and reach no TAP.
func TestMeshDrops(t *testing.T) {
	n := fiveSitesMesh(t)
	rho := n.nodes[n.idx("rho")]
	eps, vorke, pi0 := n.nodes[n.idx("epsilon")], n.nodes[n.idx("vorke")], n.nodes[n.idx("pi0")]
	inner := ethFrame(broadcastMAC, vmMAC(9), "crafted")
	frame := func(h mesh.Header) []byte {
		b := make([]byte, mesh.HeaderLen, mesh.HeaderLen+len(inner))
		h.Put(b)
		return append(b, inner...)
	}
	// A unicast from pi0 for vorke, transiting rho with hop limit 1.
	rho.mp.InputFromLink(rho.port[n.idx("pi0")], []Frame{{Data: frame(mesh.Header{HopLimit: 1, Ingress: pi0.m.ID(), Egress: vorke.m.ID()})}})
	// Hop limit 0 on arrival.
	rho.mp.InputFromLink(rho.port[n.idx("pi0")], []Frame{{Data: frame(mesh.Header{HopLimit: 0, Ingress: pi0.m.ID(), Egress: rho.m.ID()})}})
	if st := rho.mp.Stats(); st.HopLimit != 1 || st.HopLimitZero != 1 || st.Transit != 0 {
		t.Errorf("hop-limit drops %d, hop-limit-zero %d (want 1, 1), transit %d (want 0)", st.HopLimit, st.HopLimitZero, st.Transit)
	}
	// A broadcast from epsilon arriving at rho over the link from vorke:
	// rho's path to epsilon is the direct link, so it is off the tree.
	rho.mp.InputFromLink(rho.port[n.idx("vorke")], []Frame{{Data: frame(mesh.Header{Multi: true, HopLimit: 9, Ingress: eps.m.ID()})}})
	if st := rho.mp.Stats(); st.ReversePath != 1 {
		t.Errorf("reverse-path drops %d, want 1", st.ReversePath)
	}
	// Garbage.
	rho.mp.InputFromLink(1, []Frame{{Data: []byte{1, 2, 3}}})
	n.pump()
	if st := rho.mp.Stats(); st.Malformed != 1 {
		t.Errorf("malformed %d, want 1", st.Malformed)
	}
	if got := n.tapsGot(inner); len(got) != 0 {
		t.Errorf("dropped frames reached TAPs: %v", got)
	}
	if len(n.used) != 0 {
		t.Errorf("dropped frames crossed links: %v", n.used)
	}
}

// TestMeshFlushOnNodeLeave: addresses learned behind a node are forgotten
// when it leaves the graph, and traffic to them floods instead.
func TestMeshFlushOnNodeLeave(t *testing.T) {
	n := fiveSitesMesh(t)
	n.fromVM("pi0", ethFrame(broadcastMAC, vmMAC(4), "arp"))
	vorke := n.nodes[n.idx("vorke")]
	if node, ok := vorke.mp.AddressNode(0, vmMAC(4)); !ok || node != n.nodes[n.idx("pi0")].m.ID() {
		t.Fatalf("vorke learned vm-pi0 behind %v %v", node, ok)
	}
	n.kill("rho") // pi0's only neighbour: pi0 leaves everyone's graph
	n.converge()
	if _, ok := vorke.mp.AddressNode(0, vmMAC(4)); ok {
		t.Fatal("vm-pi0 still learned behind pi0, which left the graph")
	}
	// The others still reach each other.
	bc := ethFrame(broadcastMAC, vmMAC(3), "after")
	n.fromVM("vorke", bc)
	if got := n.tapsGot(bc); got["bob"] != 1 || got["epsilon"] != 1 || got["pi0"] != 0 {
		t.Fatalf("broadcast from vorke after rho's death: %v", got)
	}
}

// TestMeshPortAllocatesNothing: a unicast frame from the TAP into the mesh
// and a transit frame allocate nothing in a steady state.
func TestMeshPortAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	n := fiveSitesMesh(t)
	n.fromVM("pi0", ethFrame(broadcastMAC, vmMAC(4), "arp"))
	n.fromVM("vorke", ethFrame(broadcastMAC, vmMAC(3), "arp"))
	rho := n.nodes[n.idx("rho")]
	for _, nd := range n.nodes {
		for p := range nd.peer {
			nd.mp.AddLink(p, "", new(countPort))
		}
	}
	pi0 := n.nodes[n.idx("pi0")]
	uc := []Frame{{Data: ethFrame(vmMAC(3), vmMAC(4), "to vorke")}}
	h := mesh.Header{HopLimit: 8, Ingress: pi0.m.ID(), Egress: n.nodes[n.idx("vorke")].m.ID()}
	transit := make([]byte, mesh.HeaderLen+len(uc[0].Data))
	copy(transit[mesh.HeaderLen:], uc[0].Data)
	in := []Frame{{Data: transit}}
	allocs := testing.AllocsPerRun(1000, func() {
		pi0.b.Input(pi0.tapID, uc)
		h.Put(transit)
		rho.mp.InputFromLink(rho.port[n.idx("pi0")], in)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}
