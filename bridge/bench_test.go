package bridge

import (
	"sync/atomic"
	"testing"
)

// benchBridge returns a bridge with nports counting ports, host(1) learned
// behind port 1 and host(2) behind port 2.
func benchBridge(tb testing.TB, nports int) (*Bridge, []PortID, []*countPort) {
	b := New(Config{Logger: discardLogger()})
	var ids []PortID
	var ports []*countPort
	for i := range nports {
		p := new(countPort)
		ports = append(ports, p)
		ids = append(ids, b.AddPort(testPortNames[i], p))
	}
	b.Input(ids[1], []Frame{{Data: arpRequest(tb, host(1), 0)}})
	b.Input(ids[2], []Frame{{Data: arpRequest(tb, host(2), 0)}})
	return b, ids, ports
}

// batchOf returns n frames holding data, each its own copy.
func batchOf(n int, data []byte) []Frame {
	frames := make([]Frame, n)
	for i := range frames {
		frames[i].Data = append([]byte(nil), data...)
	}
	return frames
}

func fullFrame(tb testing.TB, src, dst MAC) []byte {
	return udpFrame(tb, src, dst, string(make([]byte, 1472))) // 1514 bytes
}

func TestInputAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	b, ids, _ := benchBridge(t, 4)
	var handled int
	b.SetControlHandler(func(PortID, Frame) { handled++ })
	full := New(Config{Logger: discardLogger(), MaxEntries: 2})
	fullIDs := []PortID{full.AddPort("a", new(countPort)), full.AddPort("b", new(countPort)), full.AddPort("c", new(countPort))}
	full.Input(fullIDs[0], []Frame{{Data: arpRequest(t, host(1), 0)}})
	full.Input(fullIDs[1], []Frame{{Data: arpRequest(t, host(2), 0)}})
	mixed := append(batchOf(32, udpFrame(t, host(3), host(1), "u")), batchOf(32, arpRequest(t, host(3), 0))...)
	unknownSources := make([]Frame, 64)
	for i := range unknownSources {
		unknownSources[i].Data = udpFrame(t, host(byte(10+i)), host(2), "u")
	}
	unicast := batchOf(64, udpFrame(t, host(3), host(1), "u"))
	flood := batchOf(64, arpRequest(t, host(3), 0))
	control := batchOf(64, llcFrame(t, host(3), MAC{0x01, 0x80, 0xc2}))
	tests := []struct {
		name  string
		input func()
	}{
		{"known unicast", func() { b.Input(ids[0], unicast) }},
		{"flood", func() { b.Input(ids[0], flood) }},
		{"unicast and flood mixed", func() { b.Input(ids[0], mixed) }},
		{"control", func() { b.Input(ids[0], control) }},
		{"fdb full", func() { full.Input(fullIDs[2], unknownSources) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.input() // warm up: learn, fill the pool
			if n := testing.AllocsPerRun(1000, tt.input); n != 0 {
				t.Errorf("Input allocates %v times per call", n)
			}
		})
	}
	if handled == 0 {
		t.Errorf("control handler never called")
	}
}

const benchBatch = 64

func reportPerFrame(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/frame")
}

// BenchmarkForwardUnicast switches batches of 64 full-size frames from the
// TAP to a host known behind one peer.
func BenchmarkForwardUnicast(b *testing.B) {
	br, ids, ports := benchBridge(b, 4)
	frames := batchOf(benchBatch, fullFrame(b, host(3), host(1)))
	b.SetBytes(int64(benchBatch * len(frames[0].Data)))
	b.ReportAllocs()
	astray := ports[2].frames.Load()
	for b.Loop() {
		br.Input(ids[0], frames)
	}
	reportPerFrame(b)
	if ports[1].frames.Load() < uint64(b.N*benchBatch) || ports[2].frames.Load() != astray {
		b.Fatalf("frames went astray")
	}
}

// BenchmarkFlood floods batches of 64 broadcast frames to 3 ports.
func BenchmarkFlood(b *testing.B) {
	br, ids, ports := benchBridge(b, 4)
	frames := batchOf(benchBatch, arpRequest(b, host(3), 0))
	b.SetBytes(int64(benchBatch * len(frames[0].Data)))
	b.ReportAllocs()
	for b.Loop() {
		br.Input(ids[0], frames)
	}
	reportPerFrame(b)
	if ports[3].frames.Load() < uint64(b.N*benchBatch) {
		b.Fatalf("frames went astray")
	}
}

// BenchmarkForwardUnicastParallel switches known unicast from every port at
// once, as every port's reader goroutine does: the FDB read lock and the
// counters are shared.
func BenchmarkForwardUnicastParallel(b *testing.B) {
	br, ids, _ := benchBridge(b, 4)
	var next atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) % len(ids)
		dst := host(1)
		if i == 1 {
			dst = host(2)
		}
		src := host(byte(10 + i))
		frames := batchOf(benchBatch, fullFrame(b, src, dst))
		for pb.Next() {
			br.Input(ids[i], frames)
		}
	})
	reportPerFrame(b)
}
