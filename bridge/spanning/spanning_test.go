package spanning

import (
	"log/slog"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/stp"
)

type nullPort struct{ frames int }

func (p *nullPort) WriteFrames(f []bridge.Frame) { p.frames += len(f) }

func newTestTree(t *testing.T) (*Tree, *bridge.Bridge) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	br := bridge.New(bridge.Config{Logger: log})
	cfg := Config{Priority: 28672, HelloTime: time.Second, MaxAge: 6 * time.Second,
		ForwardDelay: 4 * time.Second, Protocol: stp.ProtocolRSTP}
	st, err := New(cfg, [6]byte{0xfe, 0, 0, 0, 0, 1}, br, 300*time.Second, TAPPrivate, log)
	if err != nil {
		t.Fatal(err)
	}
	return st, br
}

// A peer removed while its link was up leaves no stale link state for the
// next port that reuses its ID: that port comes up when its link does.
func TestReusedPortIDStartsDown(t *testing.T) {
	st, br := newTestTree(t)
	id := br.AddPortInState("hv2", &nullPort{}, stp.Disabled)
	if err := st.AddPort(id, "hv2", 0, false); err != nil {
		t.Fatal(err)
	}
	if !st.SetLink(id, true) {
		t.Fatal("link up on a new port changed nothing")
	}
	st.RemovePort(id)
	br.RemovePort(id)
	// A late report for the removed port, as a poll that raced the removal.
	if st.SetLink(id, true) {
		t.Fatal("SetLink acted on a removed port")
	}
	id2 := br.AddPortInState("hv4", &nullPort{}, stp.Disabled)
	if id2 != id {
		t.Fatalf("port ID not reused (%d, %d): the test needs the reuse", id2, id)
	}
	if err := st.AddPort(id2, "hv4", 0, false); err != nil {
		t.Fatal(err)
	}
	if !st.SetLink(id2, true) {
		t.Fatal("the new port behind a reused ID never comes up")
	}
	// RSTP on a point-to-point port with nobody answering: designated, and
	// out of Disabled at once.
	if got := br.PortState(id2); got == stp.Disabled {
		t.Fatalf("port state %v after link up", got)
	}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// BPDU guard, on the tree's clock: a spanning-tree message from the VM side
// disables the TAP port; BPDUGuardHold after the last one it forwards again.
func TestBPDUGuardHoldOnTheClock(t *testing.T) {
	for _, mode := range []string{TAPPrivate, TAPEdge} {
		t.Run(mode, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			log := slog.New(slog.DiscardHandler)
			br := bridge.New(bridge.Config{Logger: log})
			cfg := Config{Priority: 28672, HelloTime: time.Second, MaxAge: 6 * time.Second, ForwardDelay: 4 * time.Second,
				Protocol: stp.ProtocolRSTP, BPDUGuard: true, Now: clock.now}
			st, err := New(cfg, [6]byte{0xfe, 0, 0, 0, 0, 1}, br, 300*time.Second, mode, log)
			if err != nil {
				t.Fatal(err)
			}
			tap := br.AddPortInState("l2wg0", &nullPort{}, stp.Forwarding)
			if err := st.SetTAP(tap, "l2wg0", 0); err != nil {
				t.Fatal(err)
			}
			frame, err := stp.AppendFrameTo(nil, PrivateGroup, [6]byte{0x02, 0, 0, 0, 0, 9}, stp.BPDU{Type: stp.TypeTCN})
			if err != nil {
				t.Fatal(err)
			}
			st.handleControl(tap, bridge.Frame{Data: frame})
			if got := br.PortState(tap); got != stp.Disabled {
				t.Fatalf("TAP port %v after a BPDU from the VM side; want disabled", got)
			}
			clock.t = clock.t.Add(BPDUGuardHold - time.Second)
			st.Tick(clock.t)
			if got := br.PortState(tap); got != stp.Disabled {
				t.Fatalf("TAP port %v a second before the hold ends; want disabled", got)
			}
			clock.t = clock.t.Add(2 * time.Second)
			st.Tick(clock.t)
			if got := br.PortState(tap); got == stp.Disabled {
				t.Fatalf("TAP port still disabled a second after the hold ended")
			}
		})
	}
}
