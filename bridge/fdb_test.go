package bridge

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAgeing(t *testing.T) {
	A, B := host(0xa), host(0xb)
	tests := []struct {
		name    string
		ageing  time.Duration // SetAgeingTime after learning; 0: keep the default
		advance time.Duration
		refresh bool // A sends again just before the wait
		known   bool
	}{
		{name: "fresh", advance: 299 * time.Second, known: true},
		{name: "expired at the ageing time", advance: 300 * time.Second},
		{name: "expired later", advance: time.Hour},
		{name: "refreshed", advance: 299 * time.Second, refresh: true, known: true},
		{name: "forward delay still fresh", ageing: 15 * time.Second, advance: 14 * time.Second, known: true},
		{name: "forward delay shortens ageing", ageing: 15 * time.Second, advance: 20 * time.Second},
		{name: "zero ageing floods all", ageing: -1, advance: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestBridge(t, 3, Config{})
			tb.send(peerA, arpRequest(t, A, 0))
			if tt.refresh {
				tb.clock.Advance(200 * time.Second)
				tb.send(peerA, udpFrame(t, A, B, "again"))
			}
			switch {
			case tt.ageing < 0:
				tb.SetAgeingTime(0)
			case tt.ageing > 0:
				tb.SetAgeingTime(tt.ageing)
			}
			tb.clock.Advance(tt.advance)
			for _, p := range tb.ports {
				p.take()
			}
			data := udpFrame(t, B, A, "to A")
			tb.send(tap, data)
			want := []int{peerA, peerB} // flooded
			if tt.known {
				want = []int{peerA}
			}
			if got := tb.receivers(t, data); !slices.Equal(got, want) {
				t.Errorf("frame to A went to ports %v, want %v", got, want)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	tb := newTestBridge(t, 3, Config{AgeingTime: 100 * time.Second})
	tb.send(peerA, arpRequest(t, host(1), 0))
	tb.clock.Advance(60 * time.Second)
	tb.send(peerB, arpRequest(t, host(2), 0))
	tb.clock.Advance(50 * time.Second)

	// host 1 expired (110 s), not yet swept: still listed, with its age.
	want := []FDBEntry{
		{MAC: host(1), Port: tb.ids[peerA], PortName: "peer-a", Age: 110 * time.Second},
		{MAC: host(2), Port: tb.ids[peerB], PortName: "peer-b", Age: 50 * time.Second},
	}
	if got := tb.FDB(); !slices.Equal(got, want) {
		t.Errorf("before Sweep, FDB() = %v, want %v", got, want)
	}
	tb.Sweep()
	if got := tb.FDB(); !slices.Equal(got, want[1:]) {
		t.Errorf("after Sweep, FDB() = %v, want %v", got, want[1:])
	}
	tb.SetAgeingTime(10 * time.Second)
	tb.Sweep()
	if got := tb.FDB(); len(got) != 0 {
		t.Errorf("after a shorter ageing time and Sweep, FDB() = %v, want empty", got)
	}
}

func TestFlush(t *testing.T) {
	tests := []struct {
		name  string
		flush func(tb *testBridge)
		left  []MAC
	}{
		{"flush one port", func(tb *testBridge) { tb.Flush(tb.ids[peerA]) }, []MAC{host(3), host(4)}},
		{"flush a port with nothing", func(tb *testBridge) { tb.Flush(tb.ids[peerC]) }, []MAC{host(1), host(2), host(3), host(4)}},
		{"flush all", func(tb *testBridge) { tb.FlushAll() }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestBridge(t, 4, Config{})
			tb.send(peerA, arpRequest(t, host(1), 0))
			tb.send(peerA, arpRequest(t, host(2), 0))
			tb.send(peerB, arpRequest(t, host(3), 0))
			tb.send(tap, arpRequest(t, host(4), 0))
			tt.flush(tb)
			var left []MAC
			for _, e := range tb.FDB() {
				left = append(left, e.MAC)
			}
			if !slices.Equal(left, tt.left) {
				t.Errorf("left %v, want %v", left, tt.left)
			}
			for _, p := range tb.ports {
				p.take()
			}
			// A flushed address is unknown again: flooded.
			data := udpFrame(t, host(9), host(1), "x")
			tb.send(peerC, data)
			want := []int{peerA}
			if !slices.Contains(tt.left, host(1)) {
				want = []int{tap, peerA, peerB}
			}
			if got := tb.receivers(t, data); !slices.Equal(got, want) {
				t.Errorf("frame to host 1 went to %v, want %v", got, want)
			}
		})
	}
}

// floodMAC returns the i-th of a sequence of distinct, random-looking
// locally administered unicast addresses (multiplying by an odd constant is a
// bijection modulo 2^40).
func floodMAC(i uint64) MAC {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], (i*0x9e3779b97f4a7c15)&(1<<40-1))
	return MAC{0x02, b[3], b[4], b[5], b[6], b[7]}
}

// TestFDBLimit floods a million source addresses from one port: the FDB
// stays at its limit, the known hosts are never evicted, and forwarding
// between them goes on.
func TestFDBLimit(t *testing.T) {
	const (
		total = 1_000_000
		batch = 64
	)
	clock := newFakeClock()
	var logs bytes.Buffer
	b := New(Config{Clock: clock, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	var tapPort, peerPort, attackerPort, otherPort countPort
	tapID := b.AddPort("tap", &tapPort)
	peerID := b.AddPort("peer-a", &peerPort)
	attackerID := b.AddPort("peer-b", &attackerPort)
	b.AddPort("peer-c", &otherPort)
	A, B := host(0xa), host(0xb)
	toB, toA := udpFrame(t, A, B, "x"), udpFrame(t, B, A, "y")
	b.Input(tapID, []Frame{{Data: toB}})
	b.Input(peerID, []Frame{{Data: toA}})

	otherStart := otherPort.frames.Load()

	template := udpFrame(t, host(1), host(0xee), "flood")
	frames := make([]Frame, batch)
	for i := range frames {
		frames[i].Data = make([]byte, len(template))
		copy(frames[i].Data, template)
	}
	var sent uint64
	for sent < total {
		for i := range frames {
			src := floodMAC(sent)
			copy(frames[i].Data[6:12], src[:])
			dst := floodMAC(sent + 1<<39) // unknown unicast
			copy(frames[i].Data[0:6], dst[:])
			sent++
		}
		b.Input(attackerID, frames)
		if sent%(batch*1000) == 0 {
			clock.Advance(time.Second)
			before := peerPort.frames.Load()
			otherBefore := otherPort.frames.Load()
			b.Input(tapID, []Frame{{Data: toB}})
			if peerPort.frames.Load() != before+1 || otherPort.frames.Load() != otherBefore {
				t.Fatalf("after %d flooded sources, A→B was not forwarded to B's port alone", sent)
			}
			b.Input(peerID, []Frame{{Data: toA}}) // keep B fresh
		}
	}
	st := b.Stats()
	if st.FDBEntries != DefaultMaxEntries || st.FDBLimit != DefaultMaxEntries {
		t.Errorf("FDB size %d limit %d, want both %d", st.FDBEntries, st.FDBLimit, DefaultMaxEntries)
	}
	if want := uint64(total - (DefaultMaxEntries - 2)); st.Drops[DropFDBFull] != want {
		t.Errorf("fdb-full count = %d, want %d", st.Drops[DropFDBFull], want)
	}
	if got := otherPort.frames.Load() - otherStart; got != total {
		t.Errorf("an uninvolved port got %d flooded frames, want all %d: a full FDB must not stop forwarding", got, total)
	}
	known := 0
	for _, e := range b.FDB() {
		if e.MAC == A && e.Port == tapID || e.MAC == B && e.Port == peerID {
			known++
		}
	}
	if known != 2 {
		t.Errorf("the known hosts were evicted")
	}
	if n := strings.Count(logs.String(), "fdb full"); n != 1 {
		t.Errorf("logged %d fdb-full warnings in a quarter minute, want 1:\n%s", n, logs.String())
	}

	// Once the flooded addresses age out and are swept, there is room again.
	clock.Advance(DefaultAgeingTime)
	b.Sweep()
	b.Input(attackerID, frames[:1])
	if got := b.Stats().FDBEntries; got != 1 {
		t.Errorf("after ageing and Sweep, FDB size = %d, want 1", got)
	}
}

// TestFDBFullCount checks that DropFDBFull counts frames, whether the FDB was
// found full while reading or only when the new addresses were written.
func TestFDBFullCount(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		srcs  []byte
		want  uint64
		fdb   int
	}{
		{"room for all", 4, []byte{1, 1, 2, 3, 3}, 0, 3},
		{"full while writing", 2, []byte{1, 1, 2, 3, 3}, 2, 2},
		{"full while writing, interleaved", 2, []byte{1, 3, 2, 3, 1, 2}, 2, 2},
		{"full already", 1, []byte{9}, 0, 1}, // the first batch fills it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestBridge(t, 2, Config{MaxEntries: tt.limit})
			var frames []Frame
			for _, s := range tt.srcs {
				frames = append(frames, Frame{Data: arpRequest(t, host(s), 0)})
			}
			tb.Input(tb.ids[tap], frames)
			if got := tb.Stats().Drops[DropFDBFull]; got != tt.want {
				t.Errorf("fdb-full = %d, want %d", got, tt.want)
			}
			if got := tb.Stats().FDBEntries; got != tt.fdb {
				t.Errorf("FDB size = %d, want %d", got, tt.fdb)
			}
			if got := len(tb.ports[peerA].takeFrames()); got != len(frames) {
				t.Errorf("forwarded %d frames, want all %d", got, len(frames))
			}
			// Once full, a new address is refused while reading.
			if tt.fdb == tt.limit {
				tb.Input(tb.ids[tap], []Frame{{Data: arpRequest(t, host(0x77), 0)}, {Data: arpRequest(t, host(0x77), 0)}})
				if got := tb.Stats().Drops[DropFDBFull]; got != tt.want+2 {
					t.Errorf("fdb-full = %d after 2 more frames, want %d", got, tt.want+2)
				}
			}
		})
	}
}

// TestStationMoveLog checks that station moves are logged at debug, at most
// once a second: a loop moves addresses at line rate.
func TestStationMoveLog(t *testing.T) {
	var logs bytes.Buffer
	tb := newTestBridge(t, 3, Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	logs.Reset()
	A := host(0xa)
	for i := range 10 {
		tb.send(peerA+i%2, arpRequest(t, A, 0))
	}
	tb.clock.Advance(time.Second)
	tb.send(tap, arpRequest(t, A, 0))
	if got := tb.Stats().StationMoves; got != 10 {
		t.Errorf("StationMoves = %d, want 10", got)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[0], "mac=02:00:00:00:00:0a") ||
		!strings.Contains(lines[1], "port=tap") {
		t.Errorf("logged %q, want two debug lines", lines)
	}
}
