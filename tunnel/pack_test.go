package tunnel

import (
	"bytes"
	"testing"
	"time"

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
