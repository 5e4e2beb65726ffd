package bridge

import (
	"bytes"
	"encoding/binary"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// qinqFrame returns an 802.1ad frame: outer tag VID outer, inner 802.1Q tag
// VID inner, IPv4/UDP, padded to size bytes.
func qinqFrame(t testing.TB, src, dst MAC, outer, inner uint16, size int) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: hw(src), DstMAC: hw(dst), EthernetType: layers.EthernetTypeQinQ}
	stag := &layers.Dot1Q{VLANIdentifier: outer, Type: layers.EthernetTypeDot1Q}
	ctag := &layers.Dot1Q{VLANIdentifier: inner, Type: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 0, 0, src[5]), DstIP: net.IPv4(10, 0, 0, dst[5])}
	udp := &layers.UDP{SrcPort: 4789, DstPort: 4789}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, eth, stag, ctag, ip, udp, gopacket.Payload(make([]byte, size-14-8-20-8)))
}

// rawTagged returns a frame of n bytes from src to dst whose EtherType is
// tpid, followed by tci; the rest is zero.
func rawTagged(src, dst MAC, tpid, tci uint16, n int) []byte {
	f := make([]byte, max(n, 16))
	copy(f, dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], tpid)
	binary.BigEndian.PutUint16(f[14:], tci)
	return f[:n]
}

func TestParseVIDSet(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String of the result
		n       int
		wantErr string
	}{
		{in: "100-199,300", want: "100-199,300", n: 101},
		{in: " 5 , 7-8,6", want: "5-8", n: 4},
		{in: "1-4094", want: "all", n: 4094},
		{in: "all", want: "all", n: 4094},
		{in: "none", want: "none"},
		{in: "4094", want: "4094", n: 1},
		{in: "4096", wantErr: `"4096": out of range 1-4094`},
		{in: "4095", wantErr: `"4095": out of range 1-4094`},
		{in: "0", wantErr: `"0": out of range 1-4094`},
		{in: "100,1-5000", wantErr: `"1-5000": out of range 1-4094`},
		{in: "200-100", wantErr: `"200-100": range ends below its start`},
		{in: "10,x", wantErr: `"x": not a VID or a range of VIDs`},
		{in: "10,,11", wantErr: `"": not a VID or a range of VIDs`},
		{in: "-5", wantErr: `"-5": not a VID or a range of VIDs`},
		{in: "", wantErr: `empty list: want VIDs and ranges such as "100-199,300", "all" or "none"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseVIDSet(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseVIDSet(%q) = %v, %v; want error %q", tt.in, s, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseVIDSet(%q): %v", tt.in, err)
			}
			if s.String() != tt.want || s.Len() != tt.n {
				t.Errorf("ParseVIDSet(%q) = %q with %d VIDs; want %q with %d", tt.in, s.String(), s.Len(), tt.want, tt.n)
			}
			again, err := ParseVIDSet(s.String())
			if err != nil || again != s {
				t.Errorf("ParseVIDSet(%q) does not read back its String %q: %v", tt.in, s.String(), err)
			}
		})
	}
}

func TestEthernetVLAN(t *testing.T) {
	A, B := host(1), host(2)
	tests := []struct {
		name   string
		frame  []byte
		vid    uint16
		wantOK bool
	}{
		{"untagged", udpFrame(t, A, B, "x"), 0, true},
		{"802.1Q", taggedUDPFrame(t, A, B, 100, 5), 100, true},
		{"priority tag is VID 0", taggedUDPFrame(t, A, B, 0, 5), 0, true},
		{"VID 4094", taggedUDPFrame(t, A, B, 4094, 0), 4094, true},
		{"QinQ uses the outer VID", qinqFrame(t, A, B, 200, 100, 1522), 200, true},
		{"802.1ad single tag", rawTagged(A, B, TPIDDot1ad, 300, 64), 300, true},
		{"bare tag header", rawTagged(A, B, TPIDDot1Q, 7, 18), 7, true},
		{"VID 4095", taggedUDPFrame(t, A, B, 4095, 0), 0, false},
		{"tag on a runt", rawTagged(A, B, TPIDDot1Q, 100, 14), 0, false},
		{"truncated tag", rawTagged(A, B, TPIDDot1Q, 100, 17), 0, false},
		{"QinQ inner tag truncated", qinqFrame(t, A, B, 200, 100, 1522)[:20], 0, false},
		{"QinQ inner VID 4095", qinqFrame(t, A, B, 200, 4095, 100), 0, false},
		{"QinQ outer VID 4095", qinqFrame(t, A, B, 4095, 100, 100), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vid, ok := Ethernet(tt.frame).VLAN()
			if vid != tt.vid || ok != tt.wantOK {
				t.Errorf("VLAN() = %d, %v; want %d, %v", vid, ok, tt.vid, tt.wantOK)
			}
		})
	}
}

// fdbKeys returns the FDB as "vid/mac@port" strings.
func fdbKeys(tb *testBridge) []string {
	var keys []string
	for _, e := range tb.FDB() {
		keys = append(keys, e.String())
	}
	return keys
}

func (e FDBEntry) String() string {
	return strconv.Itoa(int(e.VID)) + "/" + e.MAC.String() + "@" + e.PortName
}

func vidSet(vids ...uint16) VIDSet {
	var s VIDSet
	for _, v := range vids {
		s.Add(v)
	}
	return s
}

func TestIndependentVLANLearning(t *testing.T) {
	tb := newTestBridge(t, 3, Config{})
	X := host(0x10)
	// X in VLAN 100 behind peer A, in VLAN 101 behind peer B, and untagged
	// behind the TAP: three stations, no station move.
	for range 3 {
		tb.send(peerA, arpRequest(t, X, 100))
		tb.send(peerB, arpRequest(t, X, 101))
		tb.send(tap, arpRequest(t, X, 0))
	}
	if got := tb.Stats().StationMoves; got != 0 {
		t.Errorf("StationMoves = %d; want 0", got)
	}
	want := []string{"0/" + X.String() + "@tap", "100/" + X.String() + "@peer-a", "101/" + X.String() + "@peer-b"}
	if got := fdbKeys(tb); !slices.Equal(got, want) {
		t.Errorf("FDB = %q; want %q", got, want)
	}
	if got, want := tb.FDBEntriesByVLAN(), map[uint16]int{0: 1, 100: 1, 101: 1}; !maps.Equal(got, want) {
		t.Errorf("FDBEntriesByVLAN() = %v; want %v", got, want)
	}
	for _, p := range tb.ports {
		p.take()
	}
	tests := []struct {
		name string
		in   int
		data []byte
		want []int
	}{
		{"VLAN 100 to X goes to peer A", peerB, taggedUDPFrame(t, host(0x21), X, 100, 0), []int{peerA}},
		{"VLAN 101 to X goes to peer B", tap, taggedUDPFrame(t, host(0x22), X, 101, 0), []int{peerB}},
		{"untagged to X goes to the TAP", peerA, udpFrame(t, host(0x23), X, "u"), []int{tap}},
		{"VLAN 102 to X is unknown: flooded", tap, taggedUDPFrame(t, host(0x24), X, 102, 0), []int{peerA, peerB}},
		{"priority-tagged to X is untagged", peerB, taggedUDPFrame(t, host(0x25), X, 0, 3), []int{tap}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb.send(tt.in, tt.data)
			if got := tb.receivers(t, tt.data); !slices.Equal(got, tt.want) {
				t.Errorf("went to ports %v; want %v", got, tt.want)
			}
		})
	}

	// A move within one VLAN is a move, and leaves the other VLANs alone.
	tb.send(peerB, arpRequest(t, X, 100))
	if got := tb.Stats().StationMoves; got != 1 {
		t.Errorf("StationMoves after X moved in VLAN 100 = %d; want 1", got)
	}
	want = []string{"0/" + X.String() + "@tap", "100/" + X.String() + "@peer-b", "101/" + X.String() + "@peer-b"}
	var got []string
	for _, e := range tb.FDB() {
		if e.MAC == X {
			got = append(got, e.String())
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("FDB entries of X after the move = %q; want %q", got, want)
	}
}

func TestVLANAgeingFlushAndLimit(t *testing.T) {
	X := host(0x10)
	tb := newTestBridge(t, 3, Config{MaxEntries: 3})
	tb.send(peerA, arpRequest(t, X, 100))
	tb.send(peerA, arpRequest(t, X, 101))
	tb.clock.Advance(200 * time.Second)
	tb.send(peerA, arpRequest(t, X, 102))
	tb.send(peerA, arpRequest(t, X, 103)) // the FDB is full: not learned
	if got := tb.Stats().Drops[DropFDBFull]; got != 1 {
		t.Errorf("DropFDBFull = %d; want 1 (the fourth VLAN of one MAC)", got)
	}
	tb.clock.Advance(150 * time.Second)
	tb.Sweep() // 100 and 101 are 350 s old, 102 is 150 s old
	want := []string{"102/" + X.String() + "@peer-a"}
	if got := fdbKeys(tb); !slices.Equal(got, want) {
		t.Errorf("FDB after Sweep = %q; want %q", got, want)
	}

	tb.send(peerA, arpRequest(t, X, 100))
	tb.send(peerB, arpRequest(t, X, 101))
	tb.FlushVLAN(tb.ids[peerA], 102)
	want = []string{"100/" + X.String() + "@peer-a", "101/" + X.String() + "@peer-b"}
	if got := fdbKeys(tb); !slices.Equal(got, want) {
		t.Errorf("FDB after FlushVLAN(peer-a, 102) = %q; want %q", got, want)
	}
	tb.FlushVLAN(tb.ids[peerB], 100) // nothing of VLAN 100 on peer B
	tb.Flush(tb.ids[peerA])          // every VLAN
	want = []string{"101/" + X.String() + "@peer-b"}
	if got := fdbKeys(tb); !slices.Equal(got, want) {
		t.Errorf("FDB after Flush(peer-a) = %q; want %q", got, want)
	}
}

func TestVLANFilter(t *testing.T) {
	X, Y, Z := host(0x10), host(0x20), host(0x30)
	only100 := VLANFilter{VIDs: vidSet(100)}
	type step struct {
		in    int
		data  []byte
		want  []int // receivers
		drops Drops // on the ingress port, by this step
	}
	drops := func(r DropReason, n uint64) Drops { var d Drops; d[r] = n; return d }
	tests := []struct {
		name   string
		filter map[int]VLANFilter
		steps  []step
		// FDB at the end
		fdb []string
		// TxVLANFiltered per port at the end
		txFiltered map[int]uint64
	}{
		{
			name:   "peer carries VLAN 100: 101 from it dropped and not learned",
			filter: map[int]VLANFilter{peerA: only100},
			steps: []step{
				{in: peerA, data: arpRequest(t, X, 101), drops: drops(DropVLANFiltered, 1)},
				{in: peerA, data: udpFrame(t, X, Y, "untagged"), drops: drops(DropVLANFiltered, 1)},
				{in: peerA, data: arpRequest(t, X, 100), want: []int{tap, peerB}},
			},
			fdb: []string{"100/" + X.String() + "@peer-a"},
		},
		{
			name:   "none of VLAN 101 is sent to a peer that carries 100",
			filter: map[int]VLANFilter{peerA: only100},
			steps: []step{
				{in: tap, data: arpRequest(t, Y, 101), want: []int{peerB}},
				{in: tap, data: arpRequest(t, Y, 100), want: []int{peerA, peerB}},
				{in: peerB, data: udpFrame(t, Z, Y, "unknown untagged"), want: []int{tap}},
			},
			fdb:        []string{"0/" + Z.String() + "@peer-b", "100/" + Y.String() + "@tap", "101/" + Y.String() + "@tap"},
			txFiltered: map[int]uint64{peerA: 2},
		},
		{
			name:   "untagged = false drops untagged frames both ways",
			filter: map[int]VLANFilter{tap: {VIDs: AllVIDs()}},
			steps: []step{
				{in: tap, data: arpRequest(t, X, 0), drops: drops(DropVLANFiltered, 1)},
				{in: peerA, data: arpRequest(t, Y, 0), want: []int{peerB}},
				{in: peerA, data: arpRequest(t, Y, 4094), want: []int{tap, peerB}},
				{in: tap, data: taggedUDPFrame(t, X, Y, 4094, 0), want: []int{peerA}},
			},
			fdb:        []string{"0/" + Y.String() + "@peer-a", "4094/" + X.String() + "@tap", "4094/" + Y.String() + "@peer-a"},
			txFiltered: map[int]uint64{tap: 1},
		},
		{
			name:   "QinQ is filtered by its outer VID",
			filter: map[int]VLANFilter{peerB: {VIDs: vidSet(200)}},
			steps: []step{
				{in: tap, data: qinqFrame(t, X, Y, 100, 200, 1522), want: []int{peerA}},
				{in: tap, data: qinqFrame(t, X, Y, 200, 100, 1522), want: []int{peerA, peerB}},
			},
			fdb:        []string{"100/" + X.String() + "@tap", "200/" + X.String() + "@tap"},
			txFiltered: map[int]uint64{peerB: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestBridge(t, 3, Config{})
			for i, f := range tt.filter {
				tb.SetVLANFilter(tb.ids[i], f)
				if got := tb.VLANFilter(tb.ids[i]); got != f {
					t.Fatalf("VLANFilter(%s) = %v; want %v", testPortNames[i], got, f)
				}
			}
			for n, st := range tt.steps {
				before := tb.Ports()[st.in].Counters.Drops
				tb.send(st.in, st.data)
				if got := tb.receivers(t, st.data); !slices.Equal(got, st.want) {
					t.Errorf("step %d: went to ports %v; want %v", n, got, st.want)
				}
				after := tb.Ports()[st.in].Counters.Drops
				for r := range after {
					after[r] -= before[r]
				}
				if after != st.drops {
					t.Errorf("step %d: drops %v; want %v", n, after, st.drops)
				}
			}
			if got := fdbKeys(tb); !slices.Equal(got, tt.fdb) {
				t.Errorf("FDB = %q; want %q", got, tt.fdb)
			}
			for i, p := range tb.Ports() {
				if got := p.Counters.TxVLANFiltered; got != tt.txFiltered[i] {
					t.Errorf("%s: TxVLANFiltered = %d; want %d", p.Name, got, tt.txFiltered[i])
				}
			}
		})
	}
}

func TestVLANFilterChange(t *testing.T) {
	X, Y := host(0x10), host(0x20)
	tb := newTestBridge(t, 3, Config{})
	tb.send(peerA, arpRequest(t, X, 100))
	tb.send(peerA, arpRequest(t, X, 101))
	tb.send(peerA, arpRequest(t, X, 0))
	tb.SetVLANFilter(tb.ids[peerA], VLANFilter{VIDs: vidSet(100)})
	// What peer A no longer carries is forgotten.
	want := []string{"100/" + X.String() + "@peer-a"}
	if got := fdbKeys(tb); !slices.Equal(got, want) {
		t.Errorf("FDB after the filter = %q; want %q", got, want)
	}
	// A unicast frame to a (VID, MAC) known on a port that does not carry
	// the VLAN (learned just before a filter change) is dropped.
	p := tb.ports_(peerA)
	tb.fdb.learnAll(p, []pendingLearn{{keyOf(101, X), 1}}, tb.now(), tb.log)
	for _, p := range tb.ports {
		p.take()
	}
	data := taggedUDPFrame(t, Y, X, 101, 0)
	tb.send(tap, data)
	if got := tb.receivers(t, data); len(got) != 0 {
		t.Errorf("frame went to ports %v; want none", got)
	}
	if got := tb.Ports()[tap].Counters.Drops[DropVLANFiltered]; got != 1 {
		t.Errorf("DropVLANFiltered on the TAP = %d; want 1", got)
	}

	// Back to all VLANs: flooding shares one list again.
	tb.SetVLANFilter(tb.ids[peerA], AllVLANs())
	if n := tb.vlanFiltered.Load(); n != 0 {
		t.Errorf("%d ports filtered after every filter was removed", n)
	}
	tb.SetVLANFilter(tb.ids[peerB], VLANFilter{Untagged: true})
	tb.RemovePort(tb.ids[peerB])
	if n := tb.vlanFiltered.Load(); n != 0 {
		t.Errorf("%d ports filtered after the filtered port was removed", n)
	}
}

// ports_ returns the bridge's port at index i.
func (tb *testBridge) ports_(i int) *port { return tb.Bridge.ports.Load().get(tb.ids[i]) }

func TestVLANBadInput(t *testing.T) {
	X, Y := host(0x10), host(0x20)
	tb := newTestBridge(t, 3, Config{})
	good := taggedUDPFrame(t, X, Y, 100, 0)
	batch := []Frame{
		{Data: taggedUDPFrame(t, X, Y, 4095, 0)},
		{Data: rawTagged(X, Broadcast, TPIDDot1Q, 100, 16)},           // tag on a runt
		{Data: rawTagged(X, Broadcast, TPIDDot1Q, 100, 17)},           // truncated tag
		{Data: qinqFrame(t, X, Broadcast, 200, 100, 100)[:21]},        // truncated inner tag
		{Data: rawTagged(X, Broadcast, TPIDDot1ad, 4095, 64)},         // reserved outer VID
		{Data: rawTagged(host(0x30), Broadcast, TPIDDot1Q, 4095, 64)}, // not learned either
		{Data: good},
	}
	tb.Input(tb.ids[tap], batch)
	if got := tb.Ports()[tap].Counters.Drops[DropBadVLANTag]; got != 6 {
		t.Errorf("DropBadVLANTag = %d; want 6", got)
	}
	if got := tb.Stats().Drops[DropBadVLANTag]; got != 6 {
		t.Errorf("bridge-wide DropBadVLANTag = %d; want 6", got)
	}
	for _, i := range []int{peerA, peerB} {
		fr := tb.ports[i].takeFrames()
		if len(fr) != 1 || !bytes.Equal(fr[0].Data, good) {
			t.Errorf("%s got %d frames; want only the good one", testPortNames[i], len(fr))
		}
	}
	want := []string{"100/" + X.String() + "@tap"}
	if got := fdbKeys(tb); !slices.Equal(got, want) {
		t.Errorf("FDB = %q; want %q", got, want)
	}
}

func TestQinQCrossesUnchanged(t *testing.T) {
	X, Y := host(0x10), host(0x20)
	tb := newTestBridge(t, 3, Config{})
	tb.send(peerB, qinqFrame(t, Y, X, 300, 7, 64))
	frames := make([]Frame, 20)
	for i := range frames {
		frames[i].Data = qinqFrame(t, X, Y, 300, uint16(100+i), 1522)
		frames[i].Data[len(frames[i].Data)-1] = byte(i)
	}
	for _, p := range tb.ports {
		p.take()
	}
	tb.Input(tb.ids[tap], frames)
	got := tb.ports[peerB].takeFrames()
	if len(got) != len(frames) {
		t.Fatalf("peer B got %d frames; want %d", len(got), len(frames))
	}
	for i, w := range got {
		if len(w.Data) != 1522 || !bytes.Equal(w.Data, frames[i].Data) || w.ptr != &frames[i].Data[0] {
			t.Errorf("frame %d: %d bytes, same as sent %v, same buffer %v", i, len(w.Data), bytes.Equal(w.Data, frames[i].Data), w.ptr == &frames[i].Data[0])
		}
	}
	if n := len(tb.ports[peerA].takeFrames()); n != 0 {
		t.Errorf("peer A got %d frames; want 0 (Y is known in VLAN 300)", n)
	}
}

func TestVLANAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	b, ids, _ := benchBridge(t, 4)
	b.SetVLANFilter(ids[3], VLANFilter{VIDs: vidSet(200)})
	b.SetVLANFilter(ids[2], VLANFilter{VIDs: vidSet(100, 101)})
	b.Input(ids[1], []Frame{{Data: arpRequest(t, host(1), 100)}})
	tagged := batchOf(64, fullTaggedFrame(t, host(3), host(1), 100))
	flood := append(batchOf(32, arpRequest(t, host(3), 101)), batchOf(32, fullTaggedFrame(t, host(3), host(1), 100))...)
	filtered := batchOf(64, arpRequest(t, host(3), 4000))
	qinq := batchOf(64, qinqFrame(t, host(3), host(1), 100, 5, 1522))
	tests := []struct {
		name   string
		frames []Frame
	}{
		{"tagged known unicast", tagged},
		{"filtered flood and unicast mixed", flood},
		{"vlan-filtered", filtered},
		{"qinq", qinq},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := func() { b.Input(ids[0], tt.frames) }
			in()
			if n := testing.AllocsPerRun(1000, in); n != 0 {
				t.Errorf("Input allocates %v times per call", n)
			}
		})
	}
}

func TestTaggedSuperframeCrosses(t *testing.T) {
	X, Y := host(0x10), host(0x20)
	tb := newTestBridge(t, 3, Config{})
	tb.SetVLANFilter(tb.ids[peerA], VLANFilter{VIDs: vidSet(100)})
	tb.SetVLANFilter(tb.ids[peerB], VLANFilter{VIDs: vidSet(101)})
	// A 64 KiB TCP superframe of VLAN 100 with its virtio-net header, as
	// a TAP with offloads hands it over: the switch reads the tag, not the
	// header, and carries both.
	super := taggedUDPFrame(t, X, Y, 100, 0)
	super = append(super, make([]byte, 65000)...)
	var offload [10]byte
	offload[0], offload[1] = 1, 1 // NEEDS_CSUM, TCPv4
	tb.Input(tb.ids[tap], []Frame{{Offload: offload, Data: super}})
	got := tb.ports[peerA].takeFrames()
	if len(got) != 1 || got[0].Offload != offload || !bytes.Equal(got[0].Data, super) {
		t.Fatalf("peer A got %d frames; want the superframe with its header", len(got))
	}
	if n := len(tb.ports[peerB].takeFrames()); n != 0 {
		t.Errorf("peer B (VLAN 101) got %d frames", n)
	}
}

func TestFrameKeys(t *testing.T) {
	f := Ethernet(taggedUDPFrame(t, MAC{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}, MAC{0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa}, 4094, 7))
	for _, vid := range []uint16{0, 1, 100, 4094} {
		if got, want := f.srcKey(vid), keyOf(vid, f.Src()); got != want {
			t.Errorf("srcKey(%d) = %#x; want %#x", vid, got, want)
		}
		if got, want := f.dstKey(vid), keyOf(vid, f.Dst()); got != want {
			t.Errorf("dstKey(%d) = %#x; want %#x", vid, got, want)
		}
		if k := f.srcKey(vid); k.vid() != vid || k.mac() != f.Src() {
			t.Errorf("srcKey(%d) reads back as %d, %v", vid, k.vid(), k.mac())
		}
	}
}

func TestPortsShowVLANs(t *testing.T) {
	tb := newTestBridge(t, 2, Config{})
	f := VLANFilter{VIDs: vidSet(7, 8, 9, 300)}
	tb.SetVLANFilter(tb.ids[peerA], f)
	ps := tb.Ports()
	if ps[tap].VLANs != AllVLANs() || ps[peerA].VLANs != f {
		t.Errorf("Ports() VLANs = %v, %v; want %v, %v", ps[tap].VLANs, ps[peerA].VLANs, AllVLANs(), f)
	}
	if got := ps[peerA].VLANs.String(); got != "7-9,300" {
		t.Errorf("String() = %q; want %q", got, "7-9,300")
	}
}

func FuzzParseVIDSet(f *testing.F) {
	for _, s := range []string{"100-199,300", "all", "none", "4096", "1-4094", " 5 ,6", "-", "1-2-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		s, err := ParseVIDSet(list)
		if err != nil {
			return
		}
		again, err := ParseVIDSet(s.String())
		if err != nil || again != s {
			t.Errorf("ParseVIDSet(%q).String() = %q does not read back: %v", list, s.String(), err)
		}
	})
}

func FuzzEthernetVLAN(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00, 0x00, 0x64})
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < EthernetHeaderLen {
			return
		}
		vid, ok := Ethernet(frame).VLAN()
		if ok && vid > MaxVID {
			t.Errorf("VLAN() = %d, ok for %x", vid, frame)
		}
		// The switch takes any frame without panicking, counting it.
		tb := newTestBridge(t, 2, Config{})
		tb.Input(tb.ids[tap], []Frame{{Data: frame}})
		if c := tb.Ports()[tap].Counters; c.RxFrames != 1 {
			t.Errorf("RxFrames = %d", c.RxFrames)
		}
	})
}

func TestVLANFilterLeavesControlFrames(t *testing.T) {
	tb := newTestBridge(t, 2, Config{})
	var rec controlRecorder
	tb.SetControlHandler(rec.handle)
	tb.SetVLANFilter(tb.ids[peerA], VLANFilter{VIDs: vidSet(100)}) // untagged = false
	bpdu := llcFrame(t, host(1), MAC{0x01, 0x80, 0xc2})
	tb.send(peerA, bpdu)
	if got := rec.take(); len(got) != 1 || !bytes.Equal(got[0].f.Data, bpdu) {
		t.Errorf("control handler got %d frames; want the BPDU (the spanning tree is one for all VLANs)", len(got))
	}
	if d := tb.Ports()[peerA].Counters.Drops[DropVLANFiltered]; d != 0 {
		t.Errorf("DropVLANFiltered = %d; want 0", d)
	}
}

// Filters change while every port switches: under the race detector this
// shows that the hot path reads filters only through their atomic pointer.
func TestVLANFilterChangesUnderTraffic(t *testing.T) {
	b, ids, ports := benchBridge(t, 4)
	frames := map[PortID][]Frame{}
	for i, id := range ids {
		frames[id] = append(batchOf(16, fullTaggedFrame(t, host(byte(20+i)), host(1), uint16(100+i%2))),
			batchOf(16, arpRequest(t, host(byte(20+i)), uint16(100+i%2)))...)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					b.Input(id, frames[id])
				}
			}
		})
	}
	filters := []VLANFilter{{VIDs: vidSet(100)}, AllVLANs(), {VIDs: vidSet(101), Untagged: true}}
	for i := range 300 {
		b.SetVLANFilter(ids[i%len(ids)], filters[i%len(filters)])
	}
	close(stop)
	wg.Wait()
	for _, id := range ids {
		b.SetVLANFilter(id, AllVLANs())
	}
	if n := b.vlanFiltered.Load(); n != 0 {
		t.Errorf("%d ports counted as filtered with every filter removed", n)
	}
	if ports[1].frames.Load() == 0 {
		t.Errorf("no frame reached port 1")
	}
}
