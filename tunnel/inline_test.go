package tunnel

import (
	"bytes"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge"
)

// inlineCounts are the packets b's peer (seen from a) sent and received on
// wireguard-go's inline path.
func inlineCounts(t *testing.T, a, b *Tunnel) (sent, received uint64) {
	t.Helper()
	peer := a.dev.LookupPeer(b.selfPublic)
	if peer == nil {
		t.Fatal("peer not found")
	}
	return peer.InlineCounts()
}

// TestInlineIdleAndBursts sends single frames (an idle path: wireguard-go's
// inline path through the tunnel's TUN) between bursts (its pipeline) both
// ways: every frame arrives once, identical, in order; the inline path
// carried some of them; each side's tx bytes are the other's rx bytes.
func TestInlineIdleAndBursts(t *testing.T) {
	a, b, swA, swB := pair(t, DefaultMTU)
	sentA0, recvA0 := inlineCounts(t, a, b)
	sentB0, recvB0 := inlineCounts(t, b, a)
	n := 0
	for round := range 20 {
		from, to := swA, swB
		if round%2 == 1 {
			from, to = swB, swA
		}
		var want [][]byte
		for _, size := range []int{1, 40, 1, 1, 7, 1} { // frames per WriteFrames
			batch := make([]bridge.Frame, size)
			for i := range batch {
				f := ethFrame(t, 60+(n*37)%1460, 0)
				n++
				batch[i] = bridge.Frame{Data: f}
				want = append(want, f)
			}
			from.port(0).WriteFrames(batch)
			if round%4 < 2 {
				// idle: wait for the frames before the next
				for _, f := range want {
					waitFrame(t, to, f)
				}
				want = want[:0]
				// quiet for longer than wireguard-go's inlineIdleGap
				// (200 µs): the next frame finds the path idle
				time.Sleep(time.Millisecond)
			}
		}
		for _, f := range want {
			waitFrame(t, to, f)
		}
	}
	sentA, recvA := inlineCounts(t, a, b)
	sentB, recvB := inlineCounts(t, b, a)
	if sentA == sentA0 || recvA == recvA0 || sentB == sentB0 || recvB == recvB0 {
		t.Errorf("inline path not taken: a sent %d->%d received %d->%d, b sent %d->%d received %d->%d",
			sentA0, sentA, recvA0, recvA, sentB0, sentB, recvB0, recvB)
	}
	t.Logf("%d frames; inline: a sent %d received %d, b sent %d received %d", n, sentA-sentA0, recvA-recvA0, sentB-sentB0, recvB-recvB0)

	deadline := time.Now().Add(5 * time.Second)
	for {
		pa, pb := peerStatus(t, a), peerStatus(t, b)
		if pa.TxBytes == pb.RxBytes && pb.TxBytes == pa.RxBytes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a tx %d rx %d, b tx %d rx %d", pa.TxBytes, pa.RxBytes, pb.TxBytes, pb.RxBytes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitFrame(t *testing.T, sw *fakeSwitch, want []byte) {
	t.Helper()
	select {
	case got := <-sw.frames:
		if !bytes.Equal(got.data, want) {
			t.Fatalf("frame of %d bytes arrived, want %d bytes (reordered or altered)", len(got.data), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("frame of %d bytes did not arrive", len(want))
	}
}

func peerStatus(t *testing.T, tn *Tunnel) PeerStatus {
	t.Helper()
	st, err := tn.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 1 {
		t.Fatalf("%d peers in status, want 1", len(st.Peers))
	}
	return st.Peers[0]
}
