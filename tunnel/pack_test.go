package tunnel

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/device"

	"github.com/l2wg/l2wg/bridge"
)

// sendBurst writes n small frames to the peer on port 0 of sw in one batch
// and waits until swTo has received all of them, in order and intact.
func sendBurst(t *testing.T, sw, swTo *fakeSwitch, n, size int) {
	t.Helper()
	frames := make([]bridge.Frame, n)
	for i := range frames {
		frames[i].Data = ethFrame(t, size+i%5, 0)
		frames[i].Offload = [10]byte{1, 0, 0, 0, 0, 0, 34, 0, 6, byte(i)}
	}
	sw.port(0).WriteFrames(frames)
	deadline := time.After(10 * time.Second)
	for i := range frames {
		select {
		case got := <-swTo.frames:
			if !bytes.Equal(got.data, frames[i].Data) || got.offload != frames[i].Offload {
				t.Fatalf("frame %d of %d: %d bytes, offload %x; want %d bytes, offload %x", i, n, len(got.data), got.offload, len(frames[i].Data), frames[i].Offload)
			}
		case <-deadline:
			t.Fatalf("%d of %d frames arrived", i, n)
		}
	}
}

// waitUnpacks waits until tn knows whether its peer p unpacks.
func waitUnpacks(t *testing.T, p *PeerPort, want bool, nudge func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.sender.peerUnpacks.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("peer %s: unpacks still %v after 10s", p.Name(), !want)
		}
		nudge()
		time.Sleep(10 * time.Millisecond)
	}
}

// A node packs small frames only for a peer whose packets say it unpacks:
// towards an older node (no flag in its label headers) every frame goes in
// a packet of its own, and the older node never sees a packed chunk; once
// the peer says it unpacks, bursts go packed and arrive whole and in
// order; when it stops saying so (an older build again), packing stops.
func TestPackingNegotiated(t *testing.T) {
	a, b, swA, swB := pair(t, DefaultMTU)
	aToB, bToA := a.Peers()[0], b.Peers()[0]
	a.vtun.tos.Store(labelUnpacksFlag) // A advertises unpacking (off by default: advertiseUnpacking)

	// B is an older node: its packets carry no unpacks flag.
	b.vtun.tos.Store(0)
	nudgeFromB := func() { swB.port(0).WriteFrames([]bridge.Frame{{Data: ethFrame(t, 60, 0)}}) }
	waitUnpacks(t, aToB, false, nudgeFromB)
	drain(swA)
	sendBurst(t, swA, swB, 100, 60)
	if chunks, _ := a.Packed(); chunks != 0 {
		t.Errorf("A packed %d chunks for an older peer", chunks)
	}
	if st := b.ReassemblyStats(); st.Packed != 0 || st.UnknownType != 0 || st.Malformed != 0 {
		t.Errorf("the older peer received %+v", st)
	}

	// B unpacks (A always did): bursts go packed both ways.
	b.vtun.tos.Store(labelUnpacksFlag)
	waitUnpacks(t, aToB, true, nudgeFromB)
	drain(swA)
	sendBurst(t, swA, swB, 200, 60)
	chunks, frames := a.Packed()
	if chunks == 0 || frames < 2*chunks {
		t.Errorf("A packed %d frames in %d chunks, want bursts packed", frames, chunks)
	}
	st := b.ReassemblyStats()
	if st.Packed != chunks || st.PackedFrames != frames || st.Malformed != 0 {
		t.Errorf("B unpacked %d frames in %d chunks (malformed %d), A sent %d in %d", st.PackedFrames, st.Packed, st.Malformed, frames, chunks)
	}
	if !bToA.sender.peerUnpacks.Load() {
		t.Error("B does not know that A unpacks")
	}
	// Frames too big to pack still go whole or in fragments among them.
	sendBurst(t, swA, swB, 30, 700)

	// B an older build again: A stops packing after B's next packet.
	b.vtun.tos.Store(0)
	waitUnpacks(t, aToB, false, nudgeFromB)
	drain(swA)
	before, _ := a.Packed()
	sendBurst(t, swA, swB, 100, 60)
	if after, _ := a.Packed(); after != before {
		t.Errorf("A packed %d chunks after B stopped unpacking", after-before)
	}
}

func drain(sw *fakeSwitch) {
	for {
		select {
		case <-sw.frames:
		default:
			return
		}
	}
}

// smallBurst is n frames of 106 bytes: 64-byte UDP datagrams.
func smallBurst(t testing.TB, n int) []bridge.Frame {
	frames := make([]bridge.Frame, n)
	for i := range frames {
		frames[i] = bridge.Frame{Data: ethFrame(t, 106, 0), Offload: [10]byte{1, 0, 0, 0, 0, 0, 34, 0, 6, 0}}
	}
	return frames
}

// Packing and unpacking a burst allocate nothing.
func TestPackingAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	var s sender
	s.peerUnpacks.Store(true)
	vt := newVirtualTUN(DefaultMTU, Label{10, 0, 0, 1})
	frames := smallBurst(t, 64)
	bufs, sizes := wgBatch()
	dst := Label{10, 0, 0, 2}
	run := func() int {
		vt.enqueue(&s, dst, frames)
		packets := 0
		for len(vt.queue) > 0 || vt.cur != nil {
			n, _ := vt.Read(bufs, sizes, device.MessageTransportHeaderSize)
			packets += n
		}
		return packets
	}
	if n := run(); n >= len(frames)/4 {
		t.Fatalf("%d frames of 106 bytes went in %d packets, want them packed", len(frames), n)
	}
	if allocs := testing.AllocsPerRun(100, func() { run() }); allocs != 0 {
		t.Errorf("packing allocates %.1f times per burst, want 0", allocs)
	}

	tn, p, sw := receiver(t)
	pkts := packedFrom(p.label, tn.self, frames)
	tn.receive(pkts, device.MessageTransportOffsetContent)
	if sw.frames != len(frames) || sw.bad != 0 {
		t.Fatalf("delivered %d frames (%d bad), want %d", sw.frames, sw.bad, len(frames))
	}
	allocs := testing.AllocsPerRun(100, func() { tn.receive(pkts, device.MessageTransportOffsetContent) })
	for try := 1; try < 3 && allocs != 0; try++ { // see TestReceiveAllocatesNothing
		allocs = min(allocs, testing.AllocsPerRun(100, func() { tn.receive(pkts, device.MessageTransportOffsetContent) }))
	}
	if allocs != 0 {
		t.Errorf("receiving packed chunks allocates %.1f times per batch, want 0", allocs)
	}
}

// packedFrom is chunksFrom for a sender that packs: one batch.
func packedFrom(from, to Label, frames []bridge.Frame) [][]byte {
	vt := newVirtualTUN(DefaultMTU, from)
	bufs, sizes := wgBatch()
	var s sender
	s.peerUnpacks.Store(true)
	vt.enqueue(&s, to, frames)
	var out [][]byte
	for len(vt.queue) > 0 || vt.cur != nil {
		n, _ := vt.Read(bufs, sizes, device.MessageTransportOffsetContent)
		for j := range n {
			out = append(out, bytes.Clone(bufs[j][:device.MessageTransportOffsetContent+sizes[j]]))
		}
	}
	return out
}

// BenchmarkSmallFrames: a burst of 64 small frames from the switch to
// wireguard-go's buffers (encapsulate) and from them to the switch
// (receive), one frame per packet (an older peer) and packed.
func BenchmarkSmallFrames(b *testing.B) {
	for _, packed := range []bool{false, true} {
		frames := smallBurst(b, 64)
		b.Run(fmt.Sprintf("encapsulate/packed=%v", packed), func(b *testing.B) {
			var s sender
			s.peerUnpacks.Store(packed)
			vt := newVirtualTUN(DefaultMTU, Label{10, 0, 0, 1})
			bufs, sizes := wgBatch()
			b.ReportAllocs()
			for b.Loop() {
				vt.enqueue(&s, Label{10, 0, 0, 2}, frames)
				for len(vt.queue) > 0 || vt.cur != nil {
					vt.Read(bufs, sizes, device.MessageTransportHeaderSize)
				}
			}
			b.ReportMetric(float64(b.N*len(frames))/b.Elapsed().Seconds(), "frames/s")
		})
		b.Run(fmt.Sprintf("receive/packed=%v", packed), func(b *testing.B) {
			tn, p, _ := receiver(b)
			var pkts [][]byte
			if packed {
				pkts = packedFrom(p.label, tn.self, frames)
			} else {
				pkts = chunksFrom(p.label, tn.self, frames)
			}
			b.ReportAllocs()
			for b.Loop() {
				tn.receive(pkts, device.MessageTransportOffsetContent)
			}
			b.ReportMetric(float64(b.N*len(frames))/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(len(pkts)), "packets/burst")
		})
	}
}

// BenchmarkPathSmallBursts is BenchmarkPath for bursts of 32 frames of 106
// bytes (64-byte UDP datagrams), one frame per packet (a peer that does
// not unpack) and packed. cpu-us/frame is the process's CPU time (user and
// system) per delivered frame: on a loaded machine it varies less than
// the time per frame.
func BenchmarkPathSmallBursts(b *testing.B) {
	for _, packed := range []bool{false, true} {
		b.Run(fmt.Sprintf("packed=%v", packed), func(b *testing.B) {
			var sinks []*sinkSwitch
			_, tns := memTunnels(b, 2, func() Switch {
				s := newSinkSwitch()
				sinks = append(sinks, s)
				return s
			})
			frames := smallBurst(b, 32)
			port := sinks[0].port("1")
			if packed {
				tns[1].vtun.tos.Store(labelUnpacksFlag)
			} else {
				tns[1].vtun.tos.Store(0)
			}
			// The receiver's next packet tells the sender.
			back := sinks[1].port("0")
			deadline := time.Now().Add(10 * time.Second)
			for tns[0].Peers()[0].sender.peerUnpacks.Load() != packed {
				back.WriteFrames(frames[:1])
				if time.Now().After(deadline) {
					b.Fatalf("after 10s the sender does not know the peer unpacks is %v", packed)
				}
				time.Sleep(10 * time.Millisecond)
			}
			sinks[1].expect(1)
			port.WriteFrames(frames[:1])
			if !sinks[1].wait(10 * time.Second) {
				b.Fatal("no session")
			}
			sinks[1].expect(int64(b.N))
			b.ReportAllocs()
			before := cpuTime()
			b.ResetTimer()
			var stop atomic.Bool
			defer stop.Store(true)
			go func() {
				for !stop.Load() {
					port.WriteFrames(frames)
				}
			}()
			if !sinks[1].wait(60 * time.Second) {
				b.Fatalf("%d of %d frames delivered", sinks[1].got.Load(), b.N)
			}
			b.StopTimer()
			b.ReportMetric((cpuTime()-before).Seconds()*1e6/float64(b.N), "cpu-us/frame")
			if chunks, _ := tns[0].Packed(); (chunks > 0) != packed {
				b.Fatalf("packed %d chunks", chunks)
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
