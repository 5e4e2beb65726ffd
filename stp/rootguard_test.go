package stp

import (
	"testing"
	"time"
)

// TestRootGuard: bridge A (node 0) has a peer B (node 1) and a root-guarded
// TAP port towards a VM bridge V (node 2).
func TestRootGuard(t *testing.T) {
	tests := []struct {
		name             string
		guard            bool
		vmPrio           uint16
		wantRoot         int       // whom A and B follow
		wantTap          PortState // A's TAP port once settled
		wantRole         Role
		wantInconsistent bool
	}{
		{"superior VM is held back", true, 0x1000, 0, Blocking, RoleBlocked, true},
		{"without the guard the VM becomes root", false, 0x1000, 2, Forwarding, RoleRoot, false},
		{"inferior VM is served", true, 0xF000, 0, Forwarding, RoleDesignated, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, prio, prio, tt.vmPrio)
			l.connect(0, 1, 100)
			tapLink := l.connectPorts(0, 2,
				PortConfig{Priority: DefaultPortPriority, PathCost: 100, RootGuard: tt.guard},
				DefaultPortConfig())
			tap := l.portOn(0, tapLink)
			a, vm := l.nodes[0].br, l.nodes[2].br
			superior := tt.guard && tt.vmPrio < prio
			if superior {
				// From V's first hello on, the TAP port never leads to the
				// root, nor learns, nor forwards; nobody follows V.
				l.check = func() {
					if l.elapsed() < DefaultHelloTime+l.step {
						return
					}
					p, _ := statusPort(a, tap)
					if p.Role == RoleRoot || p.State.Learns() || !p.RootInconsistent {
						t.Fatalf("%v: TAP port %v %v inconsistent %v", l.elapsed(), p.Role, p.State, p.RootInconsistent)
					}
					for n := range 2 {
						if l.nodes[n].br.Status().RootID == vm.Status().BridgeID {
							t.Fatalf("%v: node %d follows the VM", l.elapsed(), n)
						}
					}
				}
			}
			l.run(time.Minute)
			wantRoot := l.nodes[tt.wantRoot].br.Status().BridgeID
			for n := range 2 {
				if got := l.nodes[n].br.Status().RootID; got != wantRoot {
					t.Errorf("node %d root %v, want %v", n, got, wantRoot)
				}
			}
			p, _ := statusPort(a, tap)
			if p.State != tt.wantTap || p.Role != tt.wantRole || p.RootInconsistent != tt.wantInconsistent {
				t.Errorf("TAP port %v %v inconsistent %v, want %v %v %v\n%s",
					p.State, p.Role, p.RootInconsistent, tt.wantTap, tt.wantRole, tt.wantInconsistent, l.dump())
			}
			if !superior {
				return
			}

			// The VM stops: the superior information ages out and the port
			// recovers through Listening and Learning.
			l.check = nil
			l.kill(2)
			took, ok := l.runUntil(2*boundFailure, func() bool {
				p, _ := statusPort(a, tap)
				return p.State == Forwarding
			})
			p, _ = statusPort(a, tap)
			if !ok || took > boundFailure || p.RootInconsistent || p.Role != RoleDesignated {
				t.Errorf("TAP port %v %v inconsistent %v after %v, want designated forwarding within %v",
					p.State, p.Role, p.RootInconsistent, took, boundFailure)
			}
			t.Logf("recovered in %v", took)
		})
	}
}

// TestRootGuardLoopThroughLAN: two bridges joined by a tunnel whose TAP
// ports meet on one LAN. The LAN is the cheaper path (cost 4, a gigabit
// link), but the loop must be broken at a TAP port, never by taking the
// tunnel down: B's guarded TAP port, which would lead to the root, blocks.
func TestRootGuardLoopThroughLAN(t *testing.T) {
	l := newLab(t, prio, prio)
	tunnel := l.connect(0, 1, 100)
	guarded := PortConfig{Priority: DefaultPortPriority, PathCost: 4, RootGuard: true}
	lan := l.connectPorts(0, 1, guarded, guarded)
	l.converge(boundStart, time.Minute)
	if got, want := l.blockedPorts(), []string{"1:2"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("blocked %v, want %v (B's TAP port)\n%s", got, want, l.dump())
	}
	p, _ := statusPort(l.nodes[1].br, l.portOn(1, lan))
	if !p.RootInconsistent {
		t.Errorf("B's TAP port not root-inconsistent: %+v", p)
	}
	if st := l.nodes[1].br.Status(); st.RootPort != l.portOn(1, tunnel) {
		t.Errorf("B's root port %d, want the tunnel", st.RootPort)
	}
}

func statusPort(b *Bridge, no PortNo) (PortStatus, bool) {
	st := b.Status()
	return st.Port(no)
}
