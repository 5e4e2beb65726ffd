package bridge

import (
	"testing"

	"github.com/l2wg/l2wg/stp"
)

// A port added Disabled forwards nothing until its state changes.
func TestAddPortInStateStartsDisabled(t *testing.T) {
	tb := newTestBridge(t, 2, Config{})
	late := new(fakePort)
	id := tb.AddPortInState("late", late, stp.Disabled)
	if got := tb.PortState(id); got != stp.Disabled {
		t.Fatalf("new port state %v, want disabled", got)
	}
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0, 0}
	tb.send(0, bcast)
	if n := len(late.takeFrames()); n != 0 {
		t.Fatalf("disabled port was handed %d frames", n)
	}
	if n := len(tb.ports[1].takeFrames()); n != 1 {
		t.Fatalf("forwarding port was handed %d frames, want 1", n)
	}
	tb.SetPortState(id, stp.Forwarding)
	tb.send(0, bcast)
	if n := len(late.takeFrames()); n != 1 {
		t.Fatalf("port handed %d frames after it started forwarding, want 1", n)
	}
}
