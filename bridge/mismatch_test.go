package bridge

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge/mesh"
	"github.com/l2wg/l2wg/stp"
)

// logRecorder keeps the messages (with their attributes) logged at warn
// and above, and at info.
type logRecorder struct {
	mu    sync.Mutex // protects lines
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, b.String())
	return nil
}

// matching returns the lines that contain every one of subs.
func (r *logRecorder) matching(subs ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
next:
	for _, l := range r.lines {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

func rstpFrame(t testing.TB, src MAC) []byte {
	t.Helper()
	f, err := stp.AppendFrame(nil, src, stp.BPDU{Type: stp.TypeRST, Version: 2, HelloTime: time.Second,
		MaxAge: 6 * time.Second, ForwardDelay: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func controlFrameOf(kind mesh.ControlKind, msg string) []byte {
	b := make([]byte, mesh.ControlHeaderLen+len(msg))
	mesh.PutControlHeader(b, 0x01020304, kind)
	copy(b[mesh.ControlHeaderLen:], msg)
	return b
}

// TestSpanningTreePeerSpeaksMesh: a spanning-tree switch's peer port that
// hears a shortest-path control frame carries no data either way from then
// on (protocol-mismatch), forgets what it learned, logs one line naming the
// peer and both protocols, and hands the mesh frames to nobody; a BPDU from
// the peer takes it back.
func TestSpanningTreePeerSpeaksMesh(t *testing.T) {
	logs := new(logRecorder)
	tb := &testBridge{clock: newFakeClock()}
	tb.Bridge = New(Config{Clock: tb.clock, Logger: slog.New(logs), Protocol: "rstp"})
	for i, name := range []string{"tap", "mesh-peer", "rstp-peer"} {
		p := new(fakePort)
		tb.ports = append(tb.ports, p)
		if i == 0 {
			tb.ids = append(tb.ids, tb.AddPort(name, p))
		} else {
			tb.ids = append(tb.ids, tb.AddPeerPort(name, p, stp.Forwarding))
		}
	}
	ctl := new(controlRecorder)
	tb.SetControlHandler(ctl.handle)
	tb.send(1, arpRequest(t, host(7), 0)) // host 7 learned behind the peer
	tb.receivers(t, arpRequest(t, host(7), 0))

	for range 3 {
		tb.send(1, controlFrameOf(mesh.ControlMessage, "summary"))
	}
	if got := logs.matching("peer speaks another protocol", "peer=mesh-peer", "peer_protocol=shortest-path", "protocol=rstp"); len(got) != 1 {
		t.Fatalf("log lines %q, want one naming the peer and both protocols", logs.matching("protocol"))
	}
	if got := ctl.take(); len(got) != 0 {
		t.Errorf("mesh control frames reached the control handler: %d", len(got))
	}
	for i, p := range tb.ports {
		if f := p.takeFrames(); len(f) != 0 {
			t.Errorf("%s got %d frames from the mesh control frames", testPortNames[i], len(f))
		}
	}
	for _, e := range tb.FDB() {
		if e.MAC == host(7) {
			t.Errorf("host 7 still learned on %s", e.PortName)
		}
	}
	// Data from the peer: dropped, nothing to the TAP. Data for it: not
	// flooded to it.
	junk := udpFrame(t, host(8), Broadcast, "a data header read as a frame")
	tb.send(1, junk)
	if got := tb.receivers(t, junk); len(got) != 0 {
		t.Errorf("a frame from the mesh peer reached ports %v", got)
	}
	bc := arpRequest(t, host(1), 0)
	tb.send(0, bc)
	if got := tb.receivers(t, bc); len(got) != 1 || got[0] != 2 {
		t.Errorf("a broadcast from the TAP reached ports %v, want only the rstp peer (2)", got)
	}
	c := tb.portCounters(t, 1)
	if c.Drops[DropProtocolMismatch] != 4 {
		t.Errorf("protocol-mismatch drops %d, want 4 (3 control frames, 1 data frame)", c.Drops[DropProtocolMismatch])
	}
	if info := tb.portInfo(t, 1); info.Mismatch != "shortest-path" || info.State != stp.Forwarding {
		t.Errorf("port info %+v: want mismatch shortest-path, state forwarding (the tree's)", info)
	}
	// The tree changes the state meanwhile: the mismatch stays.
	tb.SetPortState(tb.ids[1], stp.Forwarding)
	tb.send(1, junk)
	if got := tb.receivers(t, junk); len(got) != 0 {
		t.Errorf("after a state change a frame from the mesh peer reached ports %v", got)
	}

	// The peer restarts with rstp: its BPDU takes the port back.
	tb.send(1, rstpFrame(t, host(9)))
	if got := ctl.take(); len(got) != 1 {
		t.Errorf("the BPDU reached the control handler %d times, want 1", len(got))
	}
	if got := logs.matching("again", "peer=mesh-peer"); len(got) != 1 {
		t.Errorf("recovery log lines %q, want 1", got)
	}
	tb.send(1, junk)
	if got := tb.receivers(t, junk); len(got) != 2 {
		t.Errorf("after the peer's BPDU a broadcast from it reached ports %v, want the TAP and the other peer", got)
	}
	if info := tb.portInfo(t, 1); info.Mismatch != "" {
		t.Errorf("mismatch %q after recovery", info.Mismatch)
	}
}

// TestTAPNeverSetApart: a VM cannot take its TAP out of the data path by
// sending a mesh control frame: only peer ports are watched.
func TestTAPNeverSetApart(t *testing.T) {
	tb := newTestBridge(t, 2, Config{})
	tb.send(0, controlFrameOf(mesh.ControlMessage, "forged"))
	bc := arpRequest(t, host(1), 0)
	tb.send(0, bc)
	if got := tb.receivers(t, bc); len(got) != 1 || got[0] != 1 {
		t.Fatalf("a broadcast from the TAP reached %v after a forged mesh control frame", got)
	}
}

func (tb *testBridge) portInfo(t *testing.T, i int) PortInfo {
	t.Helper()
	for _, p := range tb.Ports() {
		if p.ID == tb.ids[i] {
			return p
		}
	}
	t.Fatalf("no port %d", i)
	return PortInfo{}
}

func (tb *testBridge) portCounters(t *testing.T, i int) Counters { return tb.portInfo(t, i).Counters }

// TestMeshLinkHearsBPDU: a mesh link that hears a BPDU carries no data
// either way (protocol-mismatch), logs one line, answers with at most one
// mismatch notice a second; a control frame from the peer takes it back.
func TestMeshLinkHearsBPDU(t *testing.T) {
	n := newMeshNet(t, "a", "b", "c")
	n.link("a", "b", 10)
	n.link("b", "c", 10)
	n.converge()
	logs := new(logRecorder)
	b := n.nodes[n.idx("b")]
	b.b.log = slog.New(logs)
	// c's link as b sees it now goes to a node that runs rstp.
	toC := b.port[n.idx("c")]
	rstpPeer := new(fakePort)
	b.mp.AddLink(toC, "c", rstpPeer)
	bpdu := rstpFrame(t, host(3))
	for range 3 {
		b.mp.InputFromLink(toC, []Frame{{Data: bpdu}})
	}
	if got := logs.matching("peer speaks another protocol", "peer=c", "peer_protocol=rstp", "protocol=shortest-path"); len(got) != 1 {
		t.Fatalf("log lines %q, want one", logs.matching("protocol"))
	}
	if proto, ok := b.mp.LinkMismatch(toC); !ok || proto != "rstp" {
		t.Errorf("LinkMismatch = %q %v", proto, ok)
	}
	notices := rstpPeer.takeFrames()
	if len(notices) != 1 {
		t.Fatalf("%d notices for 3 BPDUs in the same second, want 1", len(notices))
	}
	if _, kind, _, err := mesh.DecodeControl(notices[0].Data); err != nil || kind != mesh.ControlMismatch {
		t.Errorf("notice: kind %v, %v", kind, err)
	}
	n.clock.Advance(1100 * time.Millisecond)
	b.mp.InputFromLink(toC, []Frame{{Data: bpdu}})
	if got := rstpPeer.takeFrames(); len(got) != 1 {
		t.Errorf("%d notices a second later, want 1", len(got))
	}
	// Data from the rstp node (plain Ethernet) reaches no TAP, and a
	// broadcast from a's VM does not go to it.
	junk := ethFrame(broadcastMAC, vmMAC(3), "from an rstp VM")
	b.mp.InputFromLink(toC, []Frame{{Data: junk}, {Data: ethFrame(MAC{0x01, 0, 0x5e, 0, 0, 1}, vmMAC(3), "multicast")}})
	if got := n.tapsGot(junk); len(got) != 0 {
		t.Errorf("the rstp node's frame reached TAPs %v", got)
	}
	bc := ethFrame(broadcastMAC, vmMAC(1), "from a")
	n.fromVM("a", bc)
	if got := n.tapsGot(bc); got["b"] != 1 {
		t.Errorf("a's broadcast reached TAPs %v, want b's", got)
	}
	if got := rstpPeer.takeFrames(); len(got) != 0 {
		t.Errorf("a's broadcast went to the rstp node: %d frames", len(got))
	}
	st := b.mp.Stats()
	if st.ProtocolMismatch < 6 || st.Malformed != 0 {
		t.Errorf("protocol-mismatch %d (want at least 4 BPDUs, 2 frames in, the broadcast out), malformed %d", st.ProtocolMismatch, st.Malformed)
	}
	if d := b.b.Stats().Drops[DropProtocolMismatch]; d != st.ProtocolMismatch {
		t.Errorf("switch protocol-mismatch drops %d, mesh port's %d", d, st.ProtocolMismatch)
	}

	// c restarts with the mesh: its first control frame takes the link back.
	b.mp.InputFromLink(toC, []Frame{{Data: controlFrameOf(mesh.ControlMessage, "x")}})
	if _, ok := b.mp.LinkMismatch(toC); ok {
		t.Fatal("still mismatched after a control frame")
	}
	if got := logs.matching("again", "peer=c"); len(got) != 1 {
		t.Errorf("recovery log lines %q", got)
	}
}

// TestMixedPeeringMakesNoJunk: a mesh node's control frames, as they leave
// its link, reach a spanning-tree switch's peer port: nothing gets to its
// TAP or its other peers, the port is set apart, and the mesh node's
// notice (answering the tree's BPDU) does the same when the mesh node
// sends nothing else.
func TestMixedPeeringMakesNoJunk(t *testing.T) {
	for _, c := range []struct {
		name  string
		frame func(mp *MeshPort, link mesh.Port, wire *fakePort) []byte
	}{
		{"control message", func(mp *MeshPort, link mesh.Port, wire *fakePort) []byte {
			mp.SendControl(link, []byte("a summary of the database"))
			return wire.takeFrames()[0].Data
		}},
		{"mismatch notice", func(mp *MeshPort, link mesh.Port, wire *fakePort) []byte {
			mp.InputFromLink(link, []Frame{{Data: rstpFrame(t, host(9))}})
			return wire.takeFrames()[0].Data
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := New(Config{Logger: discardLogger()})
			mp := m.AttachMesh(0x0a0b0c0d)
			wire := new(fakePort)
			mp.AddLink(256, "rstp-node", wire)
			frame := c.frame(mp, 256, wire)

			tb := &testBridge{clock: newFakeClock()}
			tb.Bridge = New(Config{Clock: tb.clock, Logger: discardLogger()})
			for i, name := range []string{"tap", "mesh-node", "rstp-peer"} {
				p := new(fakePort)
				tb.ports = append(tb.ports, p)
				if i == 0 {
					tb.ids = append(tb.ids, tb.AddPort(name, p))
				} else {
					tb.ids = append(tb.ids, tb.AddPeerPort(name, p, stp.Forwarding))
				}
			}
			tb.SetControlHandler(new(controlRecorder).handle)
			tb.send(1, frame)
			if got := tb.receivers(t, frame); len(got) != 0 {
				t.Errorf("the mesh node's frame reached ports %v", got)
			}
			if info := tb.portInfo(t, 1); info.Mismatch != "shortest-path" {
				t.Errorf("mismatch %q, want shortest-path", info.Mismatch)
			}
		})
	}
}

// TestMeshHopLimitZeroNeverDelivered: a frame for this node that arrives
// with an exhausted hop limit moves HopLimitZero and reaches no TAP, unicast
// or multi-destination; one with a hop limit left is delivered.
func TestMeshHopLimitZeroNeverDelivered(t *testing.T) {
	n := newMeshNet(t, "a", "b")
	n.link("a", "b", 10)
	n.converge()
	a, b := n.nodes[n.idx("a")], n.nodes[n.idx("b")]
	inner := ethFrame(vmMAC(2), vmMAC(1), "to b's VM")
	frame := func(h mesh.Header) []Frame {
		d := make([]byte, mesh.HeaderLen, mesh.HeaderLen+len(inner))
		h.Put(d)
		return []Frame{{Data: append(d, inner...)}}
	}
	from := b.port[n.idx("a")]
	b.mp.InputFromLink(from, frame(mesh.Header{HopLimit: 0, Ingress: a.m.ID(), Egress: b.m.ID()}))
	b.mp.InputFromLink(from, frame(mesh.Header{Multi: true, HopLimit: 0, Ingress: a.m.ID()}))
	if got := b.tap.takeFrames(); len(got) != 0 {
		t.Fatalf("%d frames with an exhausted hop limit reached the TAP", len(got))
	}
	if st := b.mp.Stats(); st.HopLimitZero != 2 || st.HopLimit != 0 {
		t.Errorf("hop-limit-zero %d, hop-limit %d; want 2, 0", st.HopLimitZero, st.HopLimit)
	}
	b.mp.InputFromLink(from, frame(mesh.Header{HopLimit: 1, Ingress: a.m.ID(), Egress: b.m.ID()}))
	if got := b.tap.takeFrames(); len(got) != 1 || !bytes.Equal(got[0].Data, inner) {
		t.Errorf("a frame with one hop left: the TAP got %d frames, want it", len(got))
	}
	if st := b.mp.Stats(); st.HopLimitZero != 2 {
		t.Errorf("hop-limit-zero %d after a good frame", st.HopLimitZero)
	}
}
