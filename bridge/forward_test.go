package bridge

import (
	"bytes"
	"slices"
	"testing"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Ports of the 4-port test bridge, by index.
const (
	tap   = 0
	peerA = 1
	peerB = 2
	peerC = 3
)

func TestForwarding(t *testing.T) {
	A, B, C, X := host(0xa), host(0xb), host(0xc), host(0x99)
	mdns := MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}
	ipv6mc := MAC{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
	type step struct {
		in       int
		src, dst MAC
		want     []int // ports that get the frame
	}
	all := func(but int) []int {
		return slices.DeleteFunc([]int{tap, peerA, peerB, peerC}, func(i int) bool { return i == but })
	}
	tests := []struct {
		name  string
		steps []step
		drops Drops
	}{
		{name: "unknown unicast floods to all but ingress", steps: []step{
			{tap, A, X, all(tap)},
		}},
		{name: "learned unicast goes to its one port", steps: []step{
			{tap, A, X, all(tap)},
			{peerA, B, A, []int{tap}},
			{tap, A, B, []int{peerA}},
			{peerA, B, A, []int{tap}},
		}},
		{name: "broadcast floods even when every host is known", steps: []step{
			{tap, A, X, all(tap)},
			{peerA, B, A, []int{tap}},
			{peerB, C, Broadcast, all(peerB)},
			{tap, A, Broadcast, all(tap)},
		}},
		{name: "multicast floods", steps: []step{
			{peerA, B, mdns, all(peerA)},
			{peerC, C, ipv6mc, all(peerC)},
		}},
		{name: "transit between two peers", steps: []step{
			{peerA, A, B, all(peerA)},
			{peerB, B, A, []int{peerA}},
			{peerA, A, B, []int{peerB}},
			{peerB, B, Broadcast, all(peerB)},
		}},
		{name: "station move", steps: []step{
			{peerA, A, X, all(peerA)},
			{tap, C, A, []int{peerA}},
			{peerB, A, X, all(peerB)}, // A moved behind peer B
			{tap, C, A, []int{peerB}},
			{peerA, A, X, all(peerA)}, // and back
			{tap, C, A, []int{peerA}},
		}},
		{name: "unicast to the ingress port is filtered", steps: []step{
			{tap, A, X, all(tap)},
			{tap, B, A, nil},
			{tap, B, A, nil},
		}, drops: Drops{DropSamePort: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestBridge(t, 4, Config{})
			for i, s := range tt.steps {
				data := udpFrame(t, s.src, s.dst, "hello")
				tb.send(s.in, data)
				if got := tb.receivers(t, data); !slices.Equal(got, s.want) {
					t.Errorf("step %d: %v→%v in on %s: got ports %v, want %v", i, s.src, s.dst, testPortNames[s.in], got, s.want)
				}
			}
			if got := tb.Stats().Drops; got != tt.drops {
				t.Errorf("drops = %v, want %v", got, tt.drops)
			}
		})
	}
}

func TestLearningFDB(t *testing.T) {
	tb := newTestBridge(t, 4, Config{})
	tb.send(peerA, udpFrame(t, host(1), host(2), "x"))
	tb.send(peerC, arpRequest(t, host(3), 0))
	tb.send(tap, arpRequest(t, host(4), 0))
	want := []FDBEntry{
		{MAC: host(1), Port: tb.ids[peerA], PortName: "peer-a"},
		{MAC: host(3), Port: tb.ids[peerC], PortName: "peer-c"},
		{MAC: host(4), Port: tb.ids[tap], PortName: "tap"},
	}
	if got := tb.FDB(); !slices.Equal(got, want) {
		t.Errorf("FDB() = %v, want %v", got, want)
	}
	if got := tb.Stats().FDBEntries; got != 3 {
		t.Errorf("Stats().FDBEntries = %d, want 3", got)
	}
	tb.send(peerB, udpFrame(t, host(1), host(2), "moved"))
	if got := tb.FDB()[0]; got.Port != tb.ids[peerB] {
		t.Errorf("after a move, FDB() entry = %v, want port %d", got, tb.ids[peerB])
	}
	if got := tb.Stats().StationMoves; got != 1 {
		t.Errorf("StationMoves = %d, want 1", got)
	}
}

// TestBatching checks that one Input call writes each egress port once, in
// input order, with known-unicast and flooded frames interleaved, and that the
// switch hands out the caller's Data without copying it.
func TestBatching(t *testing.T) {
	tb := newTestBridge(t, 4, Config{})
	A, B, X := host(0xa), host(0xb), host(0x99)
	tb.send(peerA, arpRequest(t, A, 0))
	tb.send(peerB, arpRequest(t, B, 0))
	for _, p := range tb.ports {
		p.take()
	}

	batch := []Frame{
		{Data: arpRequest(t, host(1), 0)},    // 0 flood
		{Data: udpFrame(t, host(1), A, "1")}, // 1 → peer A
		{Data: udpFrame(t, host(1), B, "2")}, // 2 → peer B
		{Data: udpFrame(t, host(1), X, "3")}, // 3 flood (unknown)
		{Data: []byte{1, 2, 3}},              // 4 runt
		{Data: udpFrame(t, host(1), A, "5")}, // 5 → peer A
		{Data: arpRequest(t, host(2), 0)},    // 6 flood
		{Data: udpFrame(t, host(2), A, "7")}, // 7 → peer A
	}
	for i := range batch {
		batch[i].Offload[0] = byte(i)
	}
	orig := make([]Frame, len(batch))
	for i, f := range batch {
		orig[i] = Frame{Offload: f.Offload, Data: bytes.Clone(f.Data)}
	}
	tb.Input(tb.ids[tap], batch)

	want := map[int][]int{
		tap:   nil,
		peerA: {0, 1, 3, 5, 6, 7},
		peerB: {0, 2, 3, 6},
		peerC: {0, 3, 6},
	}
	for port, idx := range want {
		calls := tb.ports[port].take()
		if len(idx) == 0 {
			if len(calls) != 0 {
				t.Errorf("port %s: %d WriteFrames calls, want none", testPortNames[port], len(calls))
			}
			continue
		}
		if len(calls) != 1 {
			t.Fatalf("port %s: %d WriteFrames calls, want 1", testPortNames[port], len(calls))
		}
		var got []int
		for _, w := range calls[0] {
			i := int(w.Offload[0])
			got = append(got, i)
			if !bytes.Equal(w.Data, orig[i].Data) {
				t.Errorf("port %s: frame %d changed", testPortNames[port], i)
			}
			if w.ptr != unsafe.SliceData(batch[i].Data) {
				t.Errorf("port %s: frame %d was copied", testPortNames[port], i)
			}
		}
		if !slices.Equal(got, idx) {
			t.Errorf("port %s got frames %v, want %v", testPortNames[port], got, idx)
		}
	}
	for i := range batch {
		if !bytes.Equal(batch[i].Data, orig[i].Data) || batch[i].Offload != orig[i].Offload {
			t.Errorf("input frame %d modified", i)
		}
	}
}

func TestOffloadCarried(t *testing.T) {
	tb := newTestBridge(t, 3, Config{})
	var rec controlRecorder
	tb.SetControlHandler(rec.handle)
	A, B := host(0xa), host(0xb)
	tb.send(peerA, arpRequest(t, B, 0))
	for _, p := range tb.ports {
		p.take()
	}
	// A virtio-net header: flags NEEDS_CSUM, GSO TCPv4, hdr_len 66,
	// gso_size 1448, csum_start 34, csum_offset 16.
	vnet := [10]byte{0x01, 0x01, 66, 0, 0xa8, 0x05, 34, 0, 16, 0}
	tests := []struct {
		name string
		data []byte
		want []int
	}{
		{"known unicast", udpFrame(t, A, B, "gso"), []int{peerA}},
		{"flood", udpFrame(t, A, host(0x99), "gso"), []int{peerA, peerB}},
		{"broadcast", arpRequest(t, A, 0), []int{peerA, peerB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb.Input(tb.ids[tap], []Frame{{Offload: vnet, Data: tt.data}})
			for _, i := range tt.want {
				got := tb.ports[i].takeFrames()
				if len(got) != 1 || got[0].Offload != vnet || !bytes.Equal(got[0].Data, tt.data) {
					t.Errorf("port %s got %v, want the frame with offload %x", testPortNames[i], got, vnet)
				}
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		tb.Input(tb.ids[tap], []Frame{{Offload: vnet, Data: llcFrame(t, A, MAC{0x01, 0x80, 0xc2})}})
		if got := rec.take(); len(got) != 1 || got[0].f.Offload != vnet {
			t.Errorf("control handler got %v, want one frame with offload %x", got, vnet)
		}
	})
}

// TestTagged checks that 802.1Q-tagged frames are switched by their outer
// addresses and leave unchanged, tag included.
func TestTagged(t *testing.T) {
	tb := newTestBridge(t, 4, Config{})
	A, B := host(0xa), host(0xb)
	arp := arpRequest(t, A, 100)
	tb.send(tap, arp)
	if got := tb.receivers(t, arp); !slices.Equal(got, []int{peerA, peerB, peerC}) {
		t.Errorf("tagged broadcast: got ports %v, want all peers", got)
	}
	tb.send(peerB, taggedUDPFrame(t, B, A, 100, 5))
	data := taggedUDPFrame(t, A, B, 100, 5)
	tb.send(tap, data)
	frames := tb.ports[peerB].takeFrames()
	if len(frames) != 1 || !bytes.Equal(frames[0].Data, data) {
		t.Fatalf("peer B got %d frames, want the tagged frame unchanged", len(frames))
	}
	if got := EtherType(frames[0].Data); got != 0x8100 {
		t.Errorf("EtherType = %#04x, want 0x8100", got)
	}
	pkt := gopacket.NewPacket(frames[0].Data, layers.LayerTypeEthernet, gopacket.Default)
	tag, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
	if !ok || tag.VLANIdentifier != 100 || tag.Priority != 5 {
		t.Errorf("decoded tag = %+v, want VLAN 100 priority 5", tag)
	}
	if pkt.Layer(layers.LayerTypeUDP) == nil {
		t.Errorf("decoded frame has no UDP layer: %v", pkt)
	}
	if got := tb.FDB(); len(got) != 2 {
		t.Errorf("FDB = %v, want A and B", got)
	}
}
