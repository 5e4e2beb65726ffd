package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge/mesh"
)

// The shortest-path mesh towards kernel bridges, end to end: the interop
// tests of e2e_stp_test.go with [mesh] protocol = "shortest-path". Towards
// a host bridge that runs kernel STP the whole mesh is one virtual root
// bridge on every TAP (node/mesh_stp.go); towards one that runs none, the
// appointed forwarder of the LAN (node/mesh_edge.go).

// kernelSTP turns on kernel STP on hv's br0 with 802.1D's shortest timers
// (centiseconds), the same as shortTimers.
func (tp *topo) kernelSTP(hv string) {
	tp.t.Helper()
	if out, err := tp.lab.IP(hv, "link", "set", "br0", "type", "bridge", "stp_state", "1",
		"hello_time", "100", "forward_delay", "400", "max_age", "600"); err != nil {
		tp.t.Fatalf("kernel stp on %s: %v: %s", hv, err, out)
	}
}

// kernelBridge reads hv's br0 as the kernel sees it: its root ID and the
// state of each of its ports (brif/*/state: 0 disabled, 1 listening,
// 2 learning, 3 forwarding, 4 blocking).
func (tp *topo) kernelBridge(hv string) (root string, ports map[string]string, err error) {
	out, err := tp.lab.Exec(hv, "sh", "-c",
		`cat /sys/class/net/br0/bridge/root_id; for p in /sys/class/net/br0/brif/*; do echo "${p##*/} $(cat $p/state)"; done`)
	if err != nil {
		return "", nil, fmt.Errorf("%s: read br0: %v: %s", hv, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	names := map[string]string{"0": "disabled", "1": "listening", "2": "learning", "3": "forwarding", "4": "blocking"}
	ports = map[string]string{}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) == 2 {
			ports[f[0]] = names[f[1]]
		}
	}
	return strings.TrimSpace(lines[0]), ports, nil
}

// meshRoot is the virtual root hv's l2wg shows, the lowest node of its
// mesh, and the TAP port's state, BPDUs sent and root guard flag.
type meshRootView struct {
	root, lowest, tapState string
	bpdusOut               uint64
	rootInconsistent       bool
}

func (tp *topo) meshRoot(hv string) (meshRootView, error) {
	var v meshRootView
	st, err := tp.show(hv)
	if err != nil {
		return v, err
	}
	if st.Mesh == nil || len(st.Mesh.Nodes) == 0 {
		return v, fmt.Errorf("%s: no mesh in show", hv)
	}
	if st.STP.TAPMode != "stp" {
		return v, fmt.Errorf("%s: tap mode %q, want stp", hv, st.STP.TAPMode)
	}
	ids := []string{}
	for _, n := range st.Mesh.Nodes {
		if n.Reachable {
			ids = append(ids, n.ID)
		}
	}
	if len(ids) == 0 {
		return v, fmt.Errorf("%s: no reachable node in show's mesh yet", hv)
	}
	sort.Strings(ids)
	v.root, v.lowest = st.STP.DesignatedRoot, ids[0]
	for _, p := range st.STP.Ports {
		v.tapState, v.bpdusOut, v.rootInconsistent = p.State, p.BPDUsOut, p.RootInconsistent
	}
	return v, nil
}

// newMeshPair builds hv1 and hv2, peered, in shortest-path mode, with one
// VM each; with kernel STP on both bridges when stpOn, and the LAN cable
// lan1–lan2 between the bridges when lan.
func newMeshPair(t *testing.T, stpOn, lan bool) *topo {
	tp := newTopo(t)
	tp.stp = map[string]string{}
	for _, hv := range []string{"hv1", "hv2"} {
		tp.addHV(hv)
		tp.stp[hv] = meshTable
		if stpOn {
			tp.kernelSTP(hv)
		}
	}
	tp.underlay("hv1", "hv2", "ul", "10.0.0.1", "10.0.0.2")
	if lan {
		tp.must(tp.lab.Veth("hv1", "lan1", "hv2", "lan2"))
		tp.must(tp.lab.SetMaster("hv1", "lan1", "br0"))
		tp.must(tp.lab.SetMaster("hv2", "lan2", "br0"))
		tp.must(tp.lab.Up("hv1", "lan1"))
		tp.must(tp.lab.Up("hv2", "lan2"))
	}
	tp.addVM("vm11", "hv1", "192.168.77.11")
	tp.addVM("vm21", "hv2", "192.168.77.21")
	tp.makeKeys()
	return tp
}

func (tp *topo) startMeshPair() time.Time {
	start := time.Now()
	tp.startL2WG("hv1", nil, peerConf{Name: "hv2", Endpoint: fmt.Sprintf("10.0.0.2:%d", l2wgPort)})
	tp.startL2WG("hv2", nil, peerConf{Name: "hv1", Endpoint: fmt.Sprintf("10.0.0.1:%d", l2wgPort)})
	return start
}

// firstPing waits for the first ping from one VM to another and returns
// when it came back.
func (tp *topo) firstPing(from, to string, timeout time.Duration) time.Time {
	tp.t.Helper()
	var at time.Time
	if !poll(timeout, 50*time.Millisecond, func() bool {
		tp.checkAlive()
		_, err := tp.ping(from, tp.vms[to].IP, time.Second, "-c", "1", "-W", "1")
		at = time.Now()
		return err == nil
	}) {
		tp.t.Fatalf("%s cannot reach %s within %v", from, to, timeout)
	}
	return at
}

// waitRootsAgree waits until both kernel bridges and both l2wg name the
// mesh's virtual root (priority 7000, 02:6c and the lowest node ID) and
// every port of both bridges and both TAPs has settled (forwarding or
// blocking); it returns the blocked ones ("hv/port").
func (tp *topo) waitRootsAgree(hvs ...string) []string {
	tp.t.Helper()
	var desc string
	var blocked []string
	ok := poll(stpConverge, 250*time.Millisecond, func() bool {
		tp.checkAlive()
		var parts []string
		blocked = nil
		want := ""
		agree, settled := true, true
		for _, hv := range hvs {
			kroot, kports, err := tp.kernelBridge(hv)
			if err != nil {
				desc = err.Error()
				return false
			}
			v, err := tp.meshRoot(hv)
			if err != nil {
				desc = err.Error()
				return false
			}
			if want == "" {
				want = "7000.026c" + v.lowest
			}
			agree = agree && kroot == want && v.root == want
			parts = append(parts, fmt.Sprintf("%s: kernel root %s, l2wg root %s (lowest node %s), l2wg TAP %s%s, kernel ports %v",
				hv, kroot, v.root, v.lowest, v.tapState, ifThen(v.rootInconsistent, " (root-inconsistent)"), kports))
			for name, s := range kports {
				switch s {
				case "blocking":
					blocked = append(blocked, hv+"/kernel/"+name)
				case "forwarding":
				default:
					settled = false
				}
			}
			switch v.tapState {
			case "blocking":
				blocked = append(blocked, hv+"/l2wg/tap")
			case "forwarding":
			default:
				settled = false
			}
		}
		desc = strings.Join(parts, "; ")
		return agree && settled
	})
	if !ok {
		tp.t.Fatalf("kernel bridges and l2wg did not agree on the virtual root within %v: %s", stpConverge, desc)
	}
	tp.t.Logf("settled: %s", desc)
	sort.Strings(blocked)
	return blocked
}

// TestE2EMeshSTPKernelBridge: in shortest-path mode, the TAPs sit in Linux
// bridges that run kernel STP; each l2wg speaks standard BPDUs there as the
// mesh's virtual root, both kernel bridges take it as their root through
// the TAP, `l2wg show` on both nodes names the same root as
// /sys/class/net/br0/bridge/root_id, nothing blocks, and traffic crosses.
func TestE2EMeshSTPKernelBridge(t *testing.T) {
	t.Parallel()
	tp := newMeshPair(t, true, false)
	start := tp.startMeshPair()
	first := tp.firstPing("vm11", "vm21", stpConverge)
	t.Logf("first ping vm11 -> vm21 %v after the start (kernel STP: listening + learning, 2 x 4 s, on every bridge port)",
		first.Sub(start).Round(100*time.Millisecond))
	if blocked := tp.waitRootsAgree("hv1", "hv2"); len(blocked) != 0 {
		t.Errorf("blocked ports without a loop: %v", blocked)
	}
	for _, hv := range []string{"hv1", "hv2"} {
		v, err := tp.meshRoot(hv)
		tp.must(err)
		if v.bpdusOut == 0 {
			t.Errorf("%s: l2wg sent no BPDU on its TAP", hv)
		}
		out, err := tp.lab.Exec(hv, "sh", "-c", "cat /sys/class/net/br0/bridge/root_port /sys/class/net/br0/brif/l2wg0/port_no")
		tp.must(err)
		if f := strings.Fields(string(out)); len(f) != 2 || fmt.Sprint(hexNum(f[1])) != f[0] {
			t.Errorf("%s: kernel root port %q, want the TAP's port number", hv, out)
		}
	}
	tp.checkFullSizePing("vm11", "vm21", 10*time.Second)
	tp.checkNoDuplicates("vm11", "vm21")
}

// hexNum reads "0x3" as 3.
func hexNum(s string) int {
	var n int
	fmt.Sscanf(s, "0x%x", &n)
	return n
}

// TestE2EMeshSTPLANLoop: the mesh version of TestE2ESTPLANLoop. Two
// hypervisors whose VM bridges (STP off) are joined by a LAN and whose l2wg
// are peered in shortest-path mode: a loop through the LAN. Their TAPs hear
// each other's hellos and one is the LAN's appointed forwarder: exactly one
// TAP blocks, no duplicate, no storm, and no standard BPDU reaches the LAN.
func TestE2EMeshSTPLANLoop(t *testing.T) {
	t.Parallel()
	tp := newMeshPair(t, false, false)
	tp.startMeshPair()
	tp.waitPing("vm11", "vm21", overlayUpTimeout)

	// Now the LAN cable closes a loop.
	tp.must(tp.lab.Veth("hv1", "lan1", "hv2", "lan2"))
	tp.must(tp.lab.SetMaster("hv1", "lan1", "br0"))
	tp.must(tp.lab.SetMaster("hv2", "lan2", "br0"))
	tp.must(tp.lab.Up("hv1", "lan1"))
	tp.must(tp.lab.Up("hv2", "lan2"))
	closed := time.Now()

	var desc string
	found := poll(stpConverge, 100*time.Millisecond, func() bool {
		blocked := 0
		var parts []string
		for _, hv := range []string{"hv1", "hv2"} {
			st, err := tp.lab.Exec(hv, l2wgBinary(t), "show", "--json")
			if err != nil {
				return false
			}
			var s showStatus
			if jsonErr := json.Unmarshal(st, &s); jsonErr != nil {
				return false
			}
			if s.STP != nil {
				desc = hv + ": a spanning tree on a mesh TAP whose bridge runs no STP"
				return false
			}
			for _, p := range s.Ports {
				if p.Name == s.Interface.TAP {
					parts = append(parts, hv+"/"+p.Name+"="+p.State)
					if isBlocked(p.State) {
						blocked++
					}
				}
			}
		}
		desc = strings.Join(parts, " ")
		return blocked == 1
	})
	if !found {
		t.Fatalf("the loop through the LAN was not blocked: %s", desc)
	}
	t.Logf("loop blocked %v after the LAN cable: %s", time.Since(closed).Round(100*time.Millisecond), desc)
	tp.checkNoDuplicates("vm11", "vm21")
	tp.checkNoMeshStorm(10*time.Second, 1000, "hv1", "hv2")
	fwd := tp.appointed("hv1", "hv2")
	t.Logf("%s is the LAN's appointed forwarder", fwd)

	std, hello := 0, 0
	for _, end := range [][2]string{{"hv1", "lan1"}, {"hv2", "lan2"}} {
		sock, err := tp.lab.OpenPacket(end[0], end[1])
		tp.must(err)
		deadline := time.Now().Add(3 * time.Second)
		for {
			f, err := sock.Recv(deadline)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			tp.must(err)
			switch {
			case bytes.Equal(f.Data[:6], []byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}):
				std++
			case bytes.Equal(f.Data[:6], mesh.HelloGroup[:]):
				hello++
			}
		}
		sock.Close()
	}
	if std != 0 || hello == 0 {
		t.Errorf("on the LAN in 2x3s: %d frames to 01:80:c2:00:00:00 (want 0), %d mesh hellos (want > 0)", std, hello)
	}
	t.Logf("on the LAN in 2x3s: %d mesh hellos, none to the bridge group", hello)
}

// TestE2EMeshSTPKernelLANLoop: the loop through a LAN between two sites
// whose bridges run kernel STP, in shortest-path mode, the LAN there from
// the start. Both kernel bridges see the mesh's virtual root through their
// TAP and each other across the LAN: exactly one port of the six (two TAPs
// in l2wg, four kernel bridge ports towards the TAPs and the LAN) blocks,
// a kernel LAN port; roots agree; no duplicate, no storm. The time until
// traffic flows is logged.
func TestE2EMeshSTPKernelLANLoop(t *testing.T) {
	t.Parallel()
	tp := newMeshPair(t, true, true)
	start := tp.startMeshPair()
	first := tp.firstPing("vm11", "vm21", stpConverge)
	t.Logf("first ping vm11 -> vm21 %v after the start", first.Sub(start).Round(100*time.Millisecond))
	blocked := tp.waitRootsAgree("hv1", "hv2")
	t.Logf("settled %v after the start; blocked: %v", time.Since(start).Round(100*time.Millisecond), blocked)
	if len(blocked) != 1 || !strings.Contains(blocked[0], "/kernel/lan") {
		t.Fatalf("blocked %v; want exactly one kernel LAN port", blocked)
	}
	tp.checkNoDuplicates("vm11", "vm21")
	tp.checkNoStorm(10*time.Second, 1000, "hv1", "hv2")
	// Traffic between the sites: one of them reaches the other through its
	// TAP and the mesh (its LAN port blocks).
	tp.checkFullSizePing("vm11", "vm21", 10*time.Second)
	if blocked2 := tp.waitRootsAgree("hv1", "hv2"); strings.Join(blocked2, ",") != strings.Join(blocked, ",") {
		t.Errorf("blocking point moved: %v, then %v", blocked, blocked2)
	}
}

// checkNoMeshStorm is checkNoStorm for nodes whose show has no spanning
// tree: it samples the switch counters of hvs over d around a broadcast
// and fails if any received more than limit frames.
func (tp *topo) checkNoMeshStorm(d time.Duration, limit uint64, hvs ...string) {
	tp.t.Helper()
	before := map[string]uint64{}
	for _, hv := range hvs {
		before[hv] = tp.meshRxFrames(hv)
	}
	tp.ping(tp.firstVM(), "192.168.77.255", 5*time.Second, "-b", "-c", "2", "-i", "0.5", "-W", "1")
	time.Sleep(d) // the measurement window itself
	for _, hv := range hvs {
		got := tp.meshRxFrames(hv) - before[hv]
		tp.t.Logf("%s: %d frames received by its switch in %v", hv, got, d)
		if got > limit {
			tp.t.Errorf("%s: %d frames in %v (limit %d): a broadcast storm", hv, got, d, limit)
		}
	}
}

// TestE2EMeshSTPRootGuard: a kernel bridge behind a TAP with a better
// priority than the mesh's claims the root: that TAP blocks (root guard,
// root-inconsistent, counted, logged) and its site's VM is cut off from the
// mesh, while the other site is not; once the bridge's priority is an
// ordinary one again its claim ages out and traffic crosses.
func TestE2EMeshSTPRootGuard(t *testing.T) {
	t.Parallel()
	tp := newMeshPair(t, true, false)
	if out, err := tp.lab.IP("hv2", "link", "set", "br0", "type", "bridge", "priority", "4096"); err != nil {
		t.Fatalf("bridge priority: %v: %s", err, out)
	}
	tp.startMeshPair()
	var v meshRootView
	var last error
	if !poll(stpConverge, 250*time.Millisecond, func() bool {
		tp.checkAlive()
		v, last = tp.meshRoot("hv2")
		return last == nil && v.rootInconsistent && v.tapState == "blocking"
	}) {
		t.Fatalf("hv2's TAP not blocked by root guard: %+v (%v)", v, last)
	}
	kroot, _, err := tp.kernelBridge("hv2")
	tp.must(err)
	if !strings.HasPrefix(kroot, "1000.") {
		t.Errorf("hv2's kernel bridge names root %s, want itself (priority 4096)", kroot)
	}
	st, err := tp.show("hv2")
	tp.must(err)
	if st.STP.Ports[0].RootGuardBlocks == 0 {
		t.Errorf("root guard blocks not counted: %+v", st.STP.Ports[0])
	}
	if !strings.Contains(tp.hvs["hv2"].Proc.Log(), `msg="mesh: TAP blocked by root guard`) {
		t.Error("root guard not logged")
	}
	// hv1 is not affected: its kernel bridge takes the virtual root.
	if v1, err := tp.meshRoot("hv1"); err != nil || v1.rootInconsistent {
		t.Errorf("hv1: %+v %v", v1, err)
	}
	// Held while the claim lasts: no frame crosses.
	if _, err := tp.ping("vm11", tp.vms["vm21"].IP, 4*time.Second, "-c", "3", "-W", "1"); err == nil {
		t.Error("vm11 reached vm21 through a root-guarded TAP")
	}
	if v, _ = tp.meshRoot("hv2"); !v.rootInconsistent {
		t.Errorf("hv2's TAP unblocked while its bridge still claims the root: %+v", v)
	}

	if out, err := tp.lab.IP("hv2", "link", "set", "br0", "type", "bridge", "priority", "32768"); err != nil {
		t.Fatalf("bridge priority: %v: %s", err, out)
	}
	changed := time.Now()
	at := tp.firstPing("vm11", "vm21", stpConverge)
	t.Logf("bridge priority back to 32768: traffic crosses %v later (the claim ages out within max age, then listening and learning)",
		at.Sub(changed).Round(100*time.Millisecond))
	tp.waitRootsAgree("hv1", "hv2")
}
