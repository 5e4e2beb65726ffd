package bridge

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/l2wg/l2wg/stp"
)

func TestDrops(t *testing.T) {
	A := host(0xa)
	valid := udpFrame(t, A, host(0xb), "x")
	withSrc := func(src MAC) []byte {
		f := bytes.Clone(valid)
		copy(f[6:12], src[:])
		return f
	}
	tests := []struct {
		name   string
		data   []byte
		reason DropReason
	}{
		{"empty", nil, DropRunt},
		{"13 bytes", valid[:13], DropRunt},
		{"multicast source", withSrc(MAC{0x01, 0x00, 0x5e, 0, 0, 1}), DropMulticastSource},
		{"broadcast source", withSrc(Broadcast), DropMulticastSource},
		{"zero source", withSrc(MAC{}), DropZeroSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestBridge(t, 3, Config{})
			tb.send(tap, tt.data)
			if got := tb.receivers(t, tt.data); len(got) != 0 {
				t.Errorf("forwarded to %v", got)
			}
			var want Drops
			want[tt.reason] = 1
			if got := tb.Stats().Drops; got != want {
				t.Errorf("Stats().Drops = %v, want %v", got, want)
			}
			c := tb.Ports()[tap].Counters
			wantCounters := Counters{RxFrames: 1, RxBytes: uint64(len(tt.data)), Drops: want}
			if c != wantCounters {
				t.Errorf("tap counters = %+v, want %+v", c, wantCounters)
			}
			if got := tb.FDB(); len(got) != 0 {
				t.Errorf("learned %v", got)
			}
			// A frame of the minimum length is switched.
			tb.send(tap, valid[:EthernetHeaderLen])
			if got := tb.receivers(t, valid[:EthernetHeaderLen]); len(got) != 2 {
				t.Errorf("14-byte frame went to %v, want both peers", got)
			}
		})
	}
}

func TestCounters(t *testing.T) {
	tb := newTestBridge(t, 3, Config{})
	a, b := arpRequest(t, host(1), 0), udpFrame(t, host(2), host(1), "reply")
	tb.Input(tb.ids[tap], []Frame{{Data: a}, {Data: a}})
	tb.send(peerA, b)
	tb.Output(tb.ids[peerB], []Frame{{Data: b}})
	want := []PortInfo{
		{ID: tb.ids[tap], Name: "tap", State: stp.Forwarding, VLANs: AllVLANs(),
			Counters: Counters{RxFrames: 2, RxBytes: 2 * uint64(len(a)), TxFrames: 1, TxBytes: uint64(len(b))}},
		{ID: tb.ids[peerA], Name: "peer-a", State: stp.Forwarding, VLANs: AllVLANs(),
			Counters: Counters{RxFrames: 1, RxBytes: uint64(len(b)), TxFrames: 2, TxBytes: 2 * uint64(len(a))}},
		{ID: tb.ids[peerB], Name: "peer-b", State: stp.Forwarding, VLANs: AllVLANs(),
			Counters: Counters{TxFrames: 3, TxBytes: 2*uint64(len(a)) + uint64(len(b))}},
	}
	if got := tb.Ports(); !slices.Equal(got, want) {
		t.Errorf("Ports() =\n%+v\nwant\n%+v", got, want)
	}
	if want := []PortID{1, 2, 3}; !slices.Equal(tb.ids, want) {
		t.Errorf("port IDs %v, want %v", tb.ids, want)
	}
}

func TestPortStates(t *testing.T) {
	A, B := host(0xa), host(0xb)
	states := []stp.PortState{stp.Disabled, stp.Blocking, stp.Listening, stp.Learning, stp.Forwarding}
	for _, s := range states {
		t.Run(s.String(), func(t *testing.T) {
			tb := newTestBridge(t, 3, Config{})
			var rec controlRecorder
			tb.SetControlHandler(rec.handle)
			tb.send(tap, arpRequest(t, B, 0)) // B behind the TAP
			tb.SetPortState(tb.ids[peerA], s)
			if got := tb.PortState(tb.ids[peerA]); got != s {
				t.Fatalf("PortState = %v, want %v", got, s)
			}
			for _, p := range tb.ports {
				p.take()
			}

			// Ingress on peer A.
			data := udpFrame(t, A, B, "in")
			tb.send(peerA, data)
			var want []int
			if s.Forwards() {
				want = []int{tap}
			}
			if got := tb.receivers(t, data); !slices.Equal(got, want) {
				t.Errorf("frame in on a %v port went to %v, want %v", s, got, want)
			}
			learned := slices.ContainsFunc(tb.FDB(), func(e FDBEntry) bool { return e.MAC == A })
			if learned != s.Learns() {
				t.Errorf("learned = %v, want %v", learned, s.Learns())
			}
			wantNotFwd := uint64(0)
			if !s.Forwards() {
				wantNotFwd = 1
			}
			if got := tb.Stats().Drops[DropNotForwarding]; got != wantNotFwd {
				t.Errorf("not-forwarding drops = %d, want %d", got, wantNotFwd)
			}

			// Control frames get through in every state.
			bpdu := llcFrame(t, A, MAC{0x01, 0x80, 0xc2, 0, 0, 0})
			tb.send(peerA, bpdu)
			if got := rec.take(); len(got) != 1 || got[0].in != tb.ids[peerA] || !bytes.Equal(got[0].f.Data, bpdu) {
				t.Errorf("control handler got %v, want the BPDU from peer A", got)
			}
			if got := tb.receivers(t, bpdu); len(got) != 0 {
				t.Errorf("BPDU forwarded to %v", got)
			}

			// Egress to peer A: flooding and known unicast reach it only
			// when it forwards.
			bcast := arpRequest(t, B, 0)
			tb.send(tap, bcast)
			want = []int{peerB}
			if s.Forwards() {
				want = []int{peerA, peerB}
			}
			if got := tb.receivers(t, bcast); !slices.Equal(got, want) {
				t.Errorf("broadcast went to %v, want %v", got, want)
			}
			if s.Learns() {
				toA := udpFrame(t, B, A, "out")
				tb.send(tap, toA)
				want = nil
				if s.Forwards() {
					want = []int{peerA}
				}
				if got := tb.receivers(t, toA); !slices.Equal(got, want) {
					t.Errorf("unicast to A went to %v, want %v", got, want)
				}
			}
		})
	}
}

func TestPortStateLog(t *testing.T) {
	var buf bytes.Buffer
	tb := newTestBridge(t, 2, Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	buf.Reset()
	tb.SetPortState(tb.ids[peerA], stp.Blocking)
	tb.SetPortState(tb.ids[peerA], stp.Blocking) // no change, no log
	tb.SetPortState(tb.ids[peerA], stp.Learning)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"port=peer-a id=2 state=blocking", "port=peer-a id=2 state=learning"}
	if len(lines) != len(want) {
		t.Fatalf("logged %q, want %d lines", lines, len(want))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], "level=INFO") || !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want info with %q", i, lines[i], w)
		}
	}
}

func TestSourceFilter(t *testing.T) {
	H, A := MAC{0x52, 0x54, 0, 0x12, 0x34, 0x56}, host(0xa)
	many := make([]MAC, 40)
	for i := range many {
		many[i] = host(byte(100 + i))
	}
	tests := []struct {
		name      string
		deny      []MAC
		filterOn  int
		src       MAC
		dropped   bool
		filterNil bool // clear the filter afterwards: the source passes again
	}{
		{name: "denied source", deny: []MAC{H}, filterOn: tap, src: H, dropped: true},
		{name: "other source", deny: []MAC{H}, filterOn: tap, src: A},
		{name: "filter on another port", deny: []MAC{H}, filterOn: peerA, src: H},
		{name: "long list", deny: append(slices.Clone(many), H), filterOn: tap, src: H, dropped: true},
		{name: "long list, other source", deny: many, filterOn: tap, src: A},
		{name: "cleared", deny: []MAC{H}, filterOn: tap, src: H, dropped: true, filterNil: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestBridge(t, 3, Config{})
			var rec controlRecorder
			tb.SetControlHandler(rec.handle)
			deny := slices.Clone(tt.deny)
			tb.SetSourceFilter(tb.ids[tt.filterOn], deny)
			clear(deny) // the bridge keeps its own copy
			data := arpRequest(t, tt.src, 0)
			tb.send(tap, data)
			var want []int
			if !tt.dropped {
				want = []int{peerA, peerB}
			}
			if got := tb.receivers(t, data); !slices.Equal(got, want) {
				t.Errorf("went to %v, want %v", got, want)
			}
			wantDrops := Drops{}
			if tt.dropped {
				wantDrops[DropFilteredSource] = 1
				if len(tb.FDB()) != 0 {
					t.Errorf("a filtered source was learned")
				}
			}
			if got := tb.Stats().Drops; got != wantDrops {
				t.Errorf("drops = %v, want %v", got, wantDrops)
			}
			// Control frames from a filtered source still reach the handler:
			// the host bridge's BPDUs carry the host's address.
			tb.send(tap, llcFrame(t, tt.src, MAC{0x01, 0x80, 0xc2, 0, 0, 0}))
			if got := rec.take(); len(got) != 1 {
				t.Errorf("control handler got %d frames, want 1", len(got))
			}
			if tt.filterNil {
				tb.SetSourceFilter(tb.ids[tt.filterOn], nil)
				tb.send(tap, data)
				if got := tb.receivers(t, data); len(got) != 2 {
					t.Errorf("after clearing the filter, went to %v", got)
				}
			}
		})
	}
}

func TestControlFrames(t *testing.T) {
	A := host(0xa)
	private := MAC{0x03, 0x6c, 0x32, 0x77, 0x67, 0x00} // l2wg's own group address, say
	type result int
	const (
		toHandler result = iota
		flooded
	)
	tests := []struct {
		name    string
		dst     MAC
		add     bool // AddControlAddress(dst) first
		handler bool
		want    result
	}{
		{"STP", MAC{0x01, 0x80, 0xc2, 0, 0, 0x00}, false, true, toHandler},
		{"pause", MAC{0x01, 0x80, 0xc2, 0, 0, 0x01}, false, true, toHandler},
		{"LACP", MAC{0x01, 0x80, 0xc2, 0, 0, 0x02}, false, true, toHandler},
		{"802.1X", MAC{0x01, 0x80, 0xc2, 0, 0, 0x03}, false, true, toHandler},
		{"LLDP", MAC{0x01, 0x80, 0xc2, 0, 0, 0x0e}, false, true, toHandler},
		{"last reserved", MAC{0x01, 0x80, 0xc2, 0, 0, 0x0f}, false, true, toHandler},
		{"STP without handler", MAC{0x01, 0x80, 0xc2, 0, 0, 0x00}, false, false, toHandler},
		{"GARP is data", MAC{0x01, 0x80, 0xc2, 0, 0, 0x21}, false, true, flooded},
		{"just past the range", MAC{0x01, 0x80, 0xc2, 0, 0, 0x10}, false, true, flooded},
		{"private group address", private, true, true, toHandler},
		{"private group address without handler", private, true, false, toHandler},
		{"unregistered private address", private, false, true, flooded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestBridge(t, 3, Config{})
			var rec controlRecorder
			if tt.handler {
				tb.SetControlHandler(rec.handle)
			}
			if tt.add {
				tb.AddControlAddress(tt.dst)
				tb.AddControlAddress(tt.dst)
			}
			for _, s := range []stp.PortState{stp.Forwarding, stp.Blocking} {
				tb.SetPortState(tb.ids[peerA], s)
				data := llcFrame(t, A, tt.dst)
				tb.send(peerA, data)
				got := tb.receivers(t, data)
				handled := rec.take()
				switch {
				case tt.want == flooded && s.Forwards():
					if !slices.Equal(got, []int{tap, peerB}) || len(handled) != 0 {
						t.Errorf("%v: went to %v and the handler got %d, want flooded", s, got, len(handled))
					}
				case tt.want == flooded:
					if len(got) != 0 || len(handled) != 0 {
						t.Errorf("%v: went to %v and the handler got %d, want nothing", s, got, len(handled))
					}
				default:
					if len(got) != 0 {
						t.Errorf("%v: control frame forwarded to %v", s, got)
					}
					if tt.handler && (len(handled) != 1 || handled[0].in != tb.ids[peerA]) {
						t.Errorf("%v: handler got %v, want the frame from peer A", s, handled)
					}
				}
			}
			wantDrops := uint64(0)
			if tt.want == toHandler && !tt.handler {
				wantDrops = 2
			}
			if got := tb.Stats().Drops[DropNoControlHandler]; got != wantDrops {
				t.Errorf("no-control-handler drops = %d, want %d", got, wantDrops)
			}
			if tt.add {
				tb.RemoveControlAddress(tt.dst)
				tb.SetPortState(tb.ids[peerA], stp.Forwarding)
				data := llcFrame(t, A, tt.dst)
				tb.send(peerA, data)
				if got := tb.receivers(t, data); len(got) != 2 {
					t.Errorf("after RemoveControlAddress, went to %v, want flooded", got)
				}
			}
		})
	}
}

func TestRemovePort(t *testing.T) {
	tb := newTestBridge(t, 4, Config{})
	A, B := host(0xa), host(0xb)
	tb.send(peerB, arpRequest(t, A, 0))
	tb.send(tap, arpRequest(t, B, 0))
	for _, p := range tb.ports {
		p.take()
	}
	removed := tb.ids[peerB]
	tb.RemovePort(removed)
	tb.RemovePort(removed) // twice is harmless

	if got := tb.FDB(); len(got) != 1 || got[0].MAC != B {
		t.Errorf("FDB() = %v, want only B", got)
	}
	if got := tb.PortState(removed); got != stp.Disabled {
		t.Errorf("PortState of a removed port = %v, want disabled", got)
	}
	// Input and Output on it are ignored.
	tb.Input(removed, []Frame{{Data: arpRequest(t, A, 0)}})
	tb.Output(removed, []Frame{{Data: arpRequest(t, B, 0)}})
	tb.SetPortState(removed, stp.Blocking)
	tb.SetSourceFilter(removed, []MAC{A})
	tb.Flush(removed)
	for i, p := range tb.ports {
		if got := p.take(); len(got) != 0 {
			t.Errorf("port %s got %v", testPortNames[i], got)
		}
	}
	if len(tb.FDB()) != 1 || len(tb.Ports()) != 3 {
		t.Errorf("FDB() = %v, Ports() = %v", tb.FDB(), tb.Ports())
	}
	// A is unknown again: flooded to the ports left.
	data := udpFrame(t, B, A, "x")
	tb.send(tap, data)
	if got := tb.receivers(t, data); !slices.Equal(got, []int{peerA, peerC}) {
		t.Errorf("frame to A went to %v, want peer-a and peer-c", got)
	}

	// The ID is handed out again, to a fresh forwarding port.
	p := new(fakePort)
	if id := tb.AddPort("peer-new", p); id != removed {
		t.Errorf("AddPort after RemovePort = %d, want the freed ID %d", id, removed)
	}
	info := tb.Ports()[removed-1]
	if info.Name != "peer-new" || info.State != stp.Forwarding || info.Counters != (Counters{}) {
		t.Errorf("new port = %+v", info)
	}
	tb.send(tap, data)
	if got := p.takeFrames(); len(got) != 1 {
		t.Errorf("new port got %d frames, want the flooded one", len(got))
	}
	// Removing the highest port shrinks the table.
	tb.RemovePort(tb.ids[peerC])
	if id := tb.AddPort("again", new(fakePort)); id != tb.ids[peerC] {
		t.Errorf("AddPort = %d, want %d", id, tb.ids[peerC])
	}
}

func TestOutput(t *testing.T) {
	tb := newTestBridge(t, 3, Config{})
	bpdu := llcFrame(t, host(1), MAC{0x01, 0x80, 0xc2, 0, 0, 0})
	for _, s := range []stp.PortState{stp.Disabled, stp.Blocking, stp.Listening, stp.Learning, stp.Forwarding} {
		tb.SetPortState(tb.ids[peerA], s)
		tb.Output(tb.ids[peerA], []Frame{{Offload: [10]byte{9}, Data: bpdu}})
		got := tb.ports[peerA].take()
		if len(got) != 1 || len(got[0]) != 1 || !bytes.Equal(got[0][0].Data, bpdu) || got[0][0].Offload[0] != 9 {
			t.Errorf("%v: Output wrote %v, want the BPDU", s, got)
		}
		for _, i := range []int{tap, peerB} {
			if got := tb.ports[i].take(); len(got) != 0 {
				t.Errorf("%v: port %s got %v", s, testPortNames[i], got)
			}
		}
	}
	tb.Output(tb.ids[peerA], nil)
	if got := tb.ports[peerA].take(); len(got) != 0 {
		t.Errorf("empty Output wrote %v", got)
	}
}

// TestConcurrentInput runs Input from every port at once while the ports,
// their states, filters and the FDB are administered; run it with -race.
func TestConcurrentInput(t *testing.T) {
	const (
		nports  = 4
		hosts   = 8 // per port
		batches = 1000
		batch   = 16
	)
	b := New(Config{Clock: newFakeClock(), Logger: discardLogger(), MaxEntries: 24})
	var ports [nports]countPort
	var ids [nports]PortID
	for i := range ports {
		ids[i] = b.AddPort(fmt.Sprintf("p%d", i), &ports[i])
	}
	var rec controlRecorder
	b.SetControlHandler(rec.handle)

	var wg sync.WaitGroup
	for i := range nports {
		frames := make([]Frame, batch)
		for j := range frames {
			src := host(byte(i*hosts + j%hosts))
			switch j % 5 {
			case 0:
				frames[j].Data = arpRequest(t, src, 0)
			case 1:
				frames[j].Data = llcFrame(t, src, MAC{0x01, 0x80, 0xc2, 0, 0, 0})
			default:
				frames[j].Data = udpFrame(t, src, host(byte((i+j)*hosts%(nports*hosts)+j%hosts)), "x")
			}
		}
		wg.Go(func() {
			for range batches {
				b.Input(ids[i], frames)
			}
		})
	}
	wg.Go(func() {
		for k := range batches {
			extra := b.AddPort("extra", new(countPort))
			b.SetPortState(ids[k%nports], stp.PortState(k%5))
			b.SetSourceFilter(ids[k%nports], []MAC{host(byte(k % 32))})
			b.AddControlAddress(MAC{0x03, 0, 0, 0, 0, byte(k)})
			switch k % 4 {
			case 0:
				b.Flush(ids[k%nports])
			case 1:
				b.FlushAll()
			case 2:
				b.Sweep()
				b.SetAgeingTime(DefaultAgeingTime / 2)
			}
			_ = b.FDB()
			_ = b.Ports()
			_ = b.Stats()
			b.Output(extra, []Frame{{Data: arpRequest(t, host(1), 0)}})
			b.RemovePort(extra)
		}
		for i := range nports {
			b.SetPortState(ids[i], stp.Forwarding)
		}
	})
	wg.Wait()

	var rx uint64
	for _, p := range b.Ports() {
		rx += p.Counters.RxFrames
	}
	if want := uint64(nports * batches * batch); rx != want {
		t.Errorf("rx frames = %d, want %d", rx, want)
	}
	if st := b.Stats(); st.FDBEntries > 24 {
		t.Errorf("FDB size %d over its limit 24", st.FDBEntries)
	}
}
