package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The spanning tree end to end: real l2wg processes, real kernel bridges.

// stpConverge bounds the wait for a tree to settle with short timers: a
// handshake, then listening and learning (2 x 4 s), plus slack.
const stpConverge = 40 * time.Second

// status runs `l2wg show --json` in hypervisor hv.
func (tp *topo) status(hv string) (showStatus, error) {
	var st showStatus
	out, err := tp.lab.Exec(hv, l2wgBinary(tp.t), "show", "--json")
	if err != nil {
		return st, fmt.Errorf("l2wg show in %s: %v: %s", hv, err, out)
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("l2wg show in %s: %v", hv, err)
	}
	return st, nil
}

// show is status for a hypervisor that runs the spanning tree: an error if
// it reports none.
func (tp *topo) show(hv string) (showStatus, error) {
	st, err := tp.status(hv)
	if err != nil {
		return st, err
	}
	if st.STP == nil {
		return st, fmt.Errorf("l2wg show in %s: no spanning tree", hv)
	}
	return st, nil
}

// treeState summarises the trees of hypervisors hvs: the root each one
// reports, and the state of every peer port (hv/peer → state).
type treeState struct {
	roots map[string]string
	peers map[string]string
}

func (tp *topo) trees(hvs ...string) (treeState, error) {
	ts := treeState{roots: map[string]string{}, peers: map[string]string{}}
	for _, hv := range hvs {
		st, err := tp.show(hv)
		if err != nil {
			return ts, err
		}
		ts.roots[hv] = st.STP.DesignatedRoot
		for _, p := range st.STP.Ports {
			if p.Name != st.Interface.TAP && !tp.killed[p.Name] {
				ts.peers[hv+"/"+p.Name] = p.State
			}
		}
	}
	return ts, nil
}

// agreed reports whether every hypervisor names the same root and no peer
// port is still listening, learning or disabled; it returns the blocking
// peer ports.
func (ts treeState) settled() (blocking []string, ok bool) {
	root := ""
	for _, r := range ts.roots {
		if root != "" && r != root {
			return nil, false
		}
		root = r
	}
	for name, state := range ts.peers {
		switch state {
		case "blocking", "discarding": // 802.1D, RSTP
			blocking = append(blocking, name)
		case "forwarding":
		default:
			return nil, false
		}
	}
	return blocking, true
}

// waitTree waits until the tree over hvs has settled with exactly want
// blocking peer ports, and returns them.
func (tp *topo) waitTree(want int, hvs ...string) []string {
	tp.t.Helper()
	var (
		last    treeState
		lastErr error
		blocked []string
	)
	ok := poll(stpConverge, 250*time.Millisecond, func() bool {
		tp.checkAlive()
		last, lastErr = tp.trees(hvs...)
		if lastErr != nil {
			return false
		}
		b, settled := last.settled()
		blocked = b
		return settled && len(b) == want
	})
	if !ok {
		tp.t.Fatalf("tree did not settle with %d blocking peer ports within %v: roots %v, peer ports %v (%v)", want, stpConverge, last.roots, last.peers, lastErr)
	}
	return blocked
}

// rxFrames sums the frames received by every switch port of hv.
func (tp *topo) rxFrames(hv string) uint64 {
	tp.t.Helper()
	st, err := tp.show(hv)
	tp.must(err)
	var n uint64
	for _, p := range st.Ports {
		n += p.RxFrames
	}
	return n
}

// checkNoStorm samples the switch counters of hvs over d and fails if any
// hypervisor received more than limit frames in that time: with a loop, a
// single broadcast circulates forever at line rate.
func (tp *topo) checkNoStorm(d time.Duration, limit uint64, hvs ...string) {
	tp.t.Helper()
	before := map[string]uint64{}
	for _, hv := range hvs {
		before[hv] = tp.rxFrames(hv)
	}
	// A broadcast to start a storm if there is a loop.
	tp.ping(tp.firstVM(), "192.168.77.255", 5*time.Second, "-b", "-c", "2", "-i", "0.5", "-W", "1")
	time.Sleep(d) // the measurement window itself
	for _, hv := range hvs {
		got := tp.rxFrames(hv) - before[hv]
		tp.t.Logf("%s: %d frames received by its switch in %v", hv, got, d)
		if got > limit {
			tp.t.Errorf("%s: %d frames in %v (limit %d): a broadcast storm", hv, got, d, limit)
		}
	}
}

func (tp *topo) firstVM() string {
	for name := range tp.vms {
		return name
	}
	return ""
}

// checkNoDuplicates sends broadcast pings from VM from and fails on any
// duplicate reply (a frame that came round a loop) or on a missing VM.
func (tp *topo) checkNoDuplicates(from string, want ...string) {
	tp.t.Helper()
	tp.checkBroadcastPing(from, 20*time.Second, want...)
	out, _ := tp.ping(from, "192.168.77.255", 10*time.Second, "-b", "-c", "4", "-i", "0.3", "-W", "2")
	if strings.Contains(out, "DUP!") {
		tp.t.Errorf("broadcast ping from %s got duplicate replies:\n%s", from, out)
	}
}

// newTriangle builds three fully meshed hypervisors with one VM each.
func newTriangle(t *testing.T) *topo {
	tp := newTopo(t)
	tp.mesh = "rstp" // the spanning tree's triangle (TestE2EMeshTriangle: the mesh's)
	for _, hv := range []string{"hva", "hvb", "hvc"} {
		tp.addHV(hv)
	}
	tp.underlay("hva", "hvb", "ulab", "10.0.1.1", "10.0.1.2")
	tp.underlay("hvb", "hvc", "ulbc", "10.0.2.2", "10.0.2.3")
	tp.underlay("hva", "hvc", "ulac", "10.0.3.1", "10.0.3.3")
	tp.addVM("vma", "hva", "192.168.77.41")
	tp.addVM("vmb", "hvb", "192.168.77.42")
	tp.addVM("vmc", "hvc", "192.168.77.43")
	tp.makeKeys()
	ep := func(ip string) string { return fmt.Sprintf("%s:%d", ip, l2wgPort) }
	tp.startL2WG("hva", nil, peerConf{Name: "hvb", Endpoint: ep("10.0.1.2")}, peerConf{Name: "hvc", Endpoint: ep("10.0.3.3")})
	tp.startL2WG("hvb", nil, peerConf{Name: "hva", Endpoint: ep("10.0.1.1")}, peerConf{Name: "hvc", Endpoint: ep("10.0.2.3")})
	tp.startL2WG("hvc", nil, peerConf{Name: "hva", Endpoint: ep("10.0.3.1")}, peerConf{Name: "hvb", Endpoint: ep("10.0.2.2")})
	return tp
}

// TestE2ESTPTriangle: three fully meshed sites form a loop. The tree blocks
// exactly one tunnel port, broadcasts are answered once, nothing storms; then
// the root dies and the two survivors fail over to the blocked link.
func TestE2ESTPTriangle(t *testing.T) {
	t.Parallel()
	tp := newTriangle(t)
	hvs := []string{"hva", "hvb", "hvc"}
	blocked := tp.waitTree(1, hvs...)
	t.Logf("blocked peer port: %v", blocked)
	tp.checkNoDuplicates("vma", "vmb", "vmc")
	tp.checkNoStorm(20*time.Second, 2000, hvs...)

	// The blocked link joins the two non-roots; traffic between their VMs
	// crosses the root. Kill the root's l2wg: the survivors must unblock.
	st, err := tp.show("hva")
	tp.must(err)
	root := ""
	for _, hv := range hvs {
		s, err := tp.show(hv)
		tp.must(err)
		if s.STP.IsRoot {
			root = hv
		}
	}
	if root == "" {
		t.Fatalf("no hypervisor is the root (hva sees %s)", st.STP.DesignatedRoot)
	}
	var survivors []string
	for _, hv := range hvs {
		if hv != root {
			survivors = append(survivors, hv)
		}
	}
	vmOf := map[string]string{"hva": "vma", "hvb": "vmb", "hvc": "vmc"}
	from, to := vmOf[survivors[0]], vmOf[survivors[1]]
	tp.waitPing(from, to, 10*time.Second)

	killed := time.Now()
	p := tp.hvs[root].Proc
	tp.hvs[root].Proc = nil // no longer checked for being alive
	tp.killed = map[string]bool{root: true}
	if err := p.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	resumed := poll(60*time.Second, 100*time.Millisecond, func() bool {
		_, err := tp.ping(from, tp.vms[to].IP, 3*time.Second, "-c", "1", "-W", "1")
		return err == nil
	})
	if !resumed {
		t.Fatalf("after killing the root %s, %s cannot reach %s within 60s", root, from, to)
	}
	t.Logf("killed the root %s; %s reached %s again after %v (RSTP, liveness probes every 100 ms; hello 1s, max age 6s, forward delay 4s)",
		root, from, to, time.Since(killed).Round(100*time.Millisecond))
	tp.waitTree(0, survivors...)
	tp.checkFullSizePing(from, to, 10*time.Second)
}

// TestE2ESTPKernelBridge: the TAP sits in a Linux bridge that runs kernel
// STP; l2wg speaks standard BPDUs there and both agree on one root.
func TestE2ESTPKernelBridge(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	tp.mesh = "rstp" // hv2's bridge runs no STP: without it hv2 would run l2wg's default
	tp.addHV("hv1")
	tp.addHV("hv2")
	tp.underlay("hv1", "hv2", "ul", "10.0.0.1", "10.0.0.2")
	// Kernel STP on hv1's bridge, with 802.1D's shortest timers (centiseconds).
	if out, err := tp.lab.IP("hv1", "link", "set", "br0", "type", "bridge", "stp_state", "1",
		"hello_time", "100", "forward_delay", "400", "max_age", "600"); err != nil {
		t.Fatalf("kernel stp: %v: %s", err, out)
	}
	tp.addVM("vm11", "hv1", "192.168.77.11")
	tp.addVM("vm21", "hv2", "192.168.77.21")
	tp.makeKeys()
	tp.startL2WG("hv1", nil, peerConf{Name: "hv2", Endpoint: fmt.Sprintf("10.0.0.2:%d", l2wgPort)})
	tp.startL2WG("hv2", nil, peerConf{Name: "hv1", Endpoint: fmt.Sprintf("10.0.0.1:%d", l2wgPort)})
	tp.waitPing("vm11", "vm21", overlayUpTimeout)

	var kernelRoot, l2wgRoot1, l2wgRoot2, mode string
	var bpdusIn uint64
	agreed := poll(stpConverge, 250*time.Millisecond, func() bool {
		out, err := tp.lab.Exec("hv1", "cat", "/sys/class/net/br0/bridge/root_id")
		if err != nil {
			return false
		}
		kernelRoot = strings.TrimSpace(string(out))
		s1, err1 := tp.show("hv1")
		s2, err2 := tp.show("hv2")
		if err1 != nil || err2 != nil {
			return false
		}
		l2wgRoot1, l2wgRoot2, mode = s1.STP.DesignatedRoot, s2.STP.DesignatedRoot, s1.STP.TAPMode
		for _, p := range s1.STP.Ports {
			if p.Name == s1.Interface.TAP {
				bpdusIn = p.BPDUsIn
			}
		}
		return kernelRoot == l2wgRoot1 && l2wgRoot1 == l2wgRoot2 && bpdusIn > 0
	})
	if !agreed {
		t.Fatalf("no agreement on the root: kernel %s, l2wg hv1 %s, l2wg hv2 %s; hv1 tap mode %s, BPDUs from the kernel bridge %d",
			kernelRoot, l2wgRoot1, l2wgRoot2, mode, bpdusIn)
	}
	if mode != "stp" {
		t.Errorf("hv1's TAP mode is %q, want stp (its bridge runs kernel STP)", mode)
	}
	t.Logf("kernel bridge and both l2wg agree: root %s", kernelRoot)
	tp.checkFullSizePing("vm11", "vm21", 10*time.Second)
}

// TestE2ESTPLANLoop: two hypervisors whose VM bridges (STP off, the common
// case) are joined by a LAN and whose l2wg are peered: a loop through the
// LAN, which l2wg finds with its private-group messages, and no standard
// BPDU reaches the LAN.
func TestE2ESTPLANLoop(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	tp.mesh = "rstp" // the spanning tree's answer (TestE2EMeshHAPair: the mesh's appointed forwarder)
	tp.addHV("hv1")
	tp.addHV("hv2")
	tp.underlay("hv1", "hv2", "ul", "10.0.0.1", "10.0.0.2")
	tp.addVM("vm11", "hv1", "192.168.77.11")
	tp.addVM("vm21", "hv2", "192.168.77.21")
	tp.makeKeys()
	tp.startL2WG("hv1", nil, peerConf{Name: "hv2", Endpoint: fmt.Sprintf("10.0.0.2:%d", l2wgPort)})
	tp.startL2WG("hv2", nil, peerConf{Name: "hv1", Endpoint: fmt.Sprintf("10.0.0.1:%d", l2wgPort)})
	tp.waitPing("vm11", "vm21", overlayUpTimeout)

	// Now the LAN cable between the two VM bridges closes a loop.
	tp.must(tp.lab.Veth("hv1", "lan1", "hv2", "lan2"))
	tp.must(tp.lab.SetMaster("hv1", "lan1", "br0"))
	tp.must(tp.lab.SetMaster("hv2", "lan2", "br0"))
	tp.must(tp.lab.Up("hv1", "lan1"))
	tp.must(tp.lab.Up("hv2", "lan2"))

	// One of the four l2wg ports (two TAPs, two tunnel ends) must stop
	// forwarding: a blocked tunnel port, or a TAP port blocked by root guard.
	var desc string
	found := poll(stpConverge, 250*time.Millisecond, func() bool {
		var parts []string
		blocked := 0
		for _, hv := range []string{"hv1", "hv2"} {
			st, err := tp.show(hv)
			if err != nil {
				return false
			}
			for _, p := range st.STP.Ports {
				parts = append(parts, fmt.Sprintf("%s/%s=%s%s", hv, p.Name, p.State, ifThen(p.RootInconsistent, "(root-inconsistent)")))
				if isBlocked(p.State) {
					blocked++
				}
			}
		}
		desc = strings.Join(parts, " ")
		return blocked == 1
	})
	if !found {
		t.Fatalf("the loop through the LAN was not blocked: %s", desc)
	}
	t.Logf("loop blocked: %s", desc)
	tp.checkNoDuplicates("vm11", "vm21")
	tp.checkNoStorm(10*time.Second, 1000, "hv1", "hv2")

	// The bridges run no STP: a capture on the LAN sees l2wg's messages to
	// its private group, and no frame to the standard bridge group. Either
	// TAP may be the blocked one (it sends nothing), so capture what each
	// end of the LAN cable receives.
	std, private := 0, 0
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
			case bytes.Equal(f.Data[:6], privateGroup[:]):
				private++
			}
		}
		sock.Close()
	}
	if std != 0 || private == 0 {
		t.Errorf("on the LAN in 2x3s: %d frames to 01:80:c2:00:00:00 (want 0), %d to l2wg's private group (want > 0)", std, private)
	}
	t.Logf("on the LAN in 2x3s: %d frames to l2wg's private group, none to the bridge group", private)
}

// isBlocked reports a port that neither learns nor forwards for the tree:
// blocking in 802.1D, discarding in RSTP.
func isBlocked(state string) bool { return state == "blocking" || state == "discarding" }
