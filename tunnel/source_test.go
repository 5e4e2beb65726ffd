package tunnel

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge"
)

// fakeSource is a TAP for the tunnel's reader: frames pushed into batches
// are read, and given to the port in; Interrupt is counted and sticks until
// the next ReadFrames, as the TAP's does.
type fakeSource struct {
	batches    chan []bridge.Frame
	interrupt  chan struct{}
	fail       chan struct{} // closed: ReadFrames fails
	in         bridge.Port   // where Input sends the frames: the peer's port
	reads      atomic.Int64
	interrupts atomic.Int64
}

func newFakeSource(in bridge.Port) *fakeSource {
	return &fakeSource{batches: make(chan []bridge.Frame, 16), interrupt: make(chan struct{}, 1), fail: make(chan struct{}), in: in}
}

var errSourceFailed = errors.New("source failed")

func (s *fakeSource) ReadFrames() ([]bridge.Frame, error) {
	s.reads.Add(1)
	select {
	case fs := <-s.batches:
		return fs, nil
	case <-s.interrupt:
		return nil, nil
	case <-s.fail:
		return nil, errSourceFailed
	}
}

func (s *fakeSource) Input(frames []bridge.Frame) { s.in.WriteFrames(frames) }

func (s *fakeSource) Interrupt() {
	s.interrupts.Add(1)
	select {
	case s.interrupt <- struct{}{}:
	default:
	}
}

func expectFrame(t *testing.T, sw *fakeSwitch, want []byte, what string) {
	t.Helper()
	select {
	case got := <-sw.frames:
		if !bytes.Equal(got.data, want) {
			t.Fatalf("%s: got %d bytes, want the %d sent", what, len(got.data), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: did not arrive within 10s", what)
	}
}

func TestSourceIsReadByTheTunnelsReader(t *testing.T) {
	a, _, swA, swB := pair(t, DefaultMTU)
	src := newFakeSource(swA.port(0))
	a.SetSource(src)

	frame := ethFrame(t, 1514, 0)
	src.batches <- []bridge.Frame{{Data: frame}}
	expectFrame(t, swB, frame, "frame read from the source")

	// While the reader waits for the source, a frame queued by another
	// goroutine (a transit frame, the spanning tree) interrupts the wait.
	deadline := time.Now().Add(10 * time.Second)
	for src.reads.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	before := src.interrupts.Load()
	other := ethFrame(t, 200, 0)
	swA.port(0).WriteFrames([]bridge.Frame{{Data: other}})
	expectFrame(t, swB, other, "frame queued while the reader waits for the source")
	if src.interrupts.Load() == before {
		t.Fatal("the frame got through without interrupting the source")
	}

	// A large batch from the source is carried whole, in order: the
	// reader forwards it without waiting for batches only it can free.
	var burst []bridge.Frame
	for i := range 32 {
		burst = append(burst, bridge.Frame{Data: ethFrame(t, 60+i*40, 0)})
	}
	src.batches <- burst
	for i, f := range burst {
		expectFrame(t, swB, f.Data, fmt.Sprintf("burst frame %d", i))
	}
}

func TestFailedSourceLeavesTheQueue(t *testing.T) {
	a, _, swA, swB := pair(t, DefaultMTU)
	src := newFakeSource(swA.port(0))
	a.SetSource(src)
	close(src.fail)
	deadline := time.Now().Add(10 * time.Second)
	for src.reads.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	frame := ethFrame(t, 600, 0)
	swA.port(0).WriteFrames([]bridge.Frame{{Data: frame}})
	expectFrame(t, swB, frame, "frame after the source failed")
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("a failed source was read %d times, want once", n)
	}
}

func TestCloseWhileReaderWaitsForSource(t *testing.T) {
	a, _, swA, _ := pair(t, DefaultMTU)
	src := newFakeSource(swA.port(0))
	a.SetSource(src)
	deadline := time.Now().Add(10 * time.Second)
	for src.reads.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		a.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while the reader waited for its source")
	}
}
