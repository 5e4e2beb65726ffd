package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/stp"
)

// TestE2EKillAndRestart: kill -9 the l2wg of one hypervisor and start it
// again with the same config. Its TAP is persistent: the VM bridge keeps its
// port through the crash, and VM traffic resumes.
func TestE2EKillAndRestart(t *testing.T) {
	// Not parallel: the time to traffic again is asserted.
	tp := newTopo(t)
	tp.mesh = "rstp" // the restarted node's tree ports are read (l2wg show)
	tp.addHV("hv1")
	tp.addHV("hv2")
	tp.underlay("hv1", "hv2", "ul0", "10.0.0.1", "10.0.0.2")
	tp.addVM("vm11", "hv1", "192.168.77.11")
	tp.addVM("vm21", "hv2", "192.168.77.21")
	tp.makeKeys()
	hv1 := tp.hvs["hv1"]
	conf := nodeConf{
		PrivateKeyFile: "hv1.key", ListenPort: l2wgPort, TAPName: "l2wg0", Bridge: "br0", Persistent: true, Mesh: tp.mesh,
		Peers: []peerConf{{Name: "hv2", PublicKey: tp.hvs["hv2"].Keys.Public, Endpoint: fmt.Sprintf("10.0.0.2:%d", l2wgPort)}},
	}
	if !strings.HasSuffix(hv1.Keys.PrivateFile, "hv1.key") {
		t.Fatalf("unexpected key file %s", hv1.Keys.PrivateFile)
	}
	hv1.ConfPath = writeFile(t, tp.dir, "hv1.toml", conf.render())
	start := func() {
		p, err := tp.lab.Start("hv1", l2wgBinary(t), "up", "-c", hv1.ConfPath)
		tp.must(err)
		hv1.Proc = p
		tp.waitTAP("hv1")
	}
	start()
	tp.startL2WG("hv2", nil, peerConf{Name: "hv1", Endpoint: fmt.Sprintf("10.0.0.1:%d", l2wgPort)})
	tp.waitPing("vm11", "vm21", overlayUpTimeout)

	p := hv1.Proc
	hv1.Proc = nil
	tp.must(p.Signal(os.Kill))
	<-p.Done()
	killed := time.Now()
	link, err := tp.lab.LinkInfo("hv1", "l2wg0")
	if err != nil || link.Master != "br0" {
		t.Fatalf("after kill -9 the persistent TAP is gone or left br0: %+v, %v", link, err)
	}
	start()
	// The persistent TAP never left br0, so waitTAP returns at once: wait for
	// the restarted l2wg itself to answer.
	var showErr error
	if !poll(15*time.Second, 50*time.Millisecond, func() bool { _, showErr = tp.show("hv1"); return showErr == nil }) {
		t.Fatalf("restarted l2wg does not answer: %v", showErr)
	}
	tp.waitPing("vm11", "vm21", overlayUpTimeout)
	// The restarted TAP port listens and learns for 2 x forward delay (8 s)
	// after the first handshake; 20 s leaves room for a loaded machine and
	// still fails if the ports wait for max age or more on top.
	again := time.Since(killed)
	t.Logf("kill -9 and restart: vm11 reached vm21 again %v after the kill (short timers: 2 x 4 s forward delay on the TAP port)",
		again.Round(100*time.Millisecond))
	if again > 20*time.Second {
		t.Errorf("kill -9 and restart: traffic again %v after the kill; want under 20s", again.Round(100*time.Millisecond))
	}
	tp.checkFullSizePing("vm11", "vm21", 10*time.Second)
}

// sendBPDUs sends n config BPDUs a second apart from VM vm to dst, claiming
// the root with priority 0: superior to any l2wg.
func (tp *topo) sendBPDUs(vm string, dst [6]byte, n int) {
	tp.t.Helper()
	sock, err := tp.lab.OpenPacket(vm, "eth0")
	tp.must(err)
	defer sock.Close()
	var mac [6]byte
	copy(mac[:], tp.vms[vm].MAC)
	bpdu := stp.BPDU{
		Type: stp.TypeConfig, RootID: stp.NewBridgeID(0, mac), BridgeID: stp.NewBridgeID(0, mac),
		PortID: stp.NewPortID(0x80, 1), MaxAge: 6 * time.Second, HelloTime: time.Second, ForwardDelay: 4 * time.Second,
	}
	frame, err := stp.AppendFrameTo(nil, dst, mac, bpdu)
	tp.must(err)
	for i := 0; i < n; i++ {
		tp.must(sock.Send(frame))
		if i < n-1 {
			time.Sleep(time.Second) // a hello interval between BPDUs, as a bridge sends them
		}
	}
}

// tapSTPPort returns the spanning-tree view of hv's TAP port.
func (tp *topo) tapSTPPort(hv string) (showSTPPort, showSTP) {
	tp.t.Helper()
	st, err := tp.show(hv)
	tp.must(err)
	for _, p := range st.STP.Ports {
		if p.Name == st.Interface.TAP {
			return p, *st.STP
		}
	}
	tp.t.Fatalf("%s: no TAP port in the spanning tree", hv)
	return showSTPPort{}, showSTP{}
}

// TestE2ERootGuardAndBPDUGuard: a VM that claims to be a better root gets
// the TAP port blocked as root-inconsistent, not the mesh's root; with
// bpdu_guard (turned on by a reload), any BPDU disables the TAP port.
func TestE2ERootGuardAndBPDUGuard(t *testing.T) {
	t.Parallel()
	tp := newTwoHypervisorsWith(t, true, nil, nil, "rstp") // the TAP port of the spanning tree
	tp.waitPing("vm11", "vm21", overlayUpTimeout)
	_, before := tp.tapSTPPort("hv1")

	// The host bridge runs no STP, so the TAP port speaks to l2wg's private
	// group: that is where a VM must send to be heard.
	tp.sendBPDUs("vm11", privateGroup, 3)
	var port showSTPPort
	var tree showSTP
	ok := poll(5*time.Second, 100*time.Millisecond, func() bool {
		port, tree = tp.tapSTPPort("hv1")
		return port.RootInconsistent
	})
	if !ok || !isBlocked(port.State) {
		t.Fatalf("after superior BPDUs from vm11, hv1's TAP port is %s, root-inconsistent %v; want blocked (blocking/discarding) and root-inconsistent", port.State, port.RootInconsistent)
	}
	if tree.DesignatedRoot != before.DesignatedRoot {
		t.Errorf("the VM became the root: %s (was %s)", tree.DesignatedRoot, before.DesignatedRoot)
	}
	_, tree2 := tp.tapSTPPort("hv2")
	if tree2.DesignatedRoot != before.DesignatedRoot {
		t.Errorf("hv2 follows the VM's root %s", tree2.DesignatedRoot)
	}
	t.Logf("root guard: hv1's TAP port %s, root-inconsistent; root still %s", port.State, tree.DesignatedRoot)

	// Once the VM is quiet the information ages out and the port recovers.
	recovered := poll(40*time.Second, 250*time.Millisecond, func() bool {
		port, _ = tp.tapSTPPort("hv1")
		return !port.RootInconsistent && port.State == "forwarding"
	})
	if !recovered {
		t.Fatalf("hv1's TAP port did not recover after the VM went quiet: %s, root-inconsistent %v", port.State, port.RootInconsistent)
	}
	tp.waitPing("vm11", "vm21", 10*time.Second)

	// BPDU guard, turned on by a reload: any BPDU disables the TAP port.
	tp.rewriteConfig("hv1", "", peerConf{Name: "hv2", Endpoint: fmt.Sprintf("10.0.0.2:%d", l2wgPort)})
	data, err := os.ReadFile(tp.hvs["hv1"].ConfPath)
	tp.must(err)
	withGuard := strings.Replace(string(data), "[stp]\n", "[stp]\nbpdu_guard = true\n", 1)
	tp.must(os.WriteFile(tp.hvs["hv1"].ConfPath, []byte(withGuard), 0o644))
	if out, err := tp.lab.Exec("hv1", l2wgBinary(t), "reload"); err != nil || !strings.Contains(string(out), "bpdu_guard true") {
		t.Fatalf("reload to turn bpdu_guard on: %v: %s", err, out)
	}
	tp.sendBPDUs("vm11", privateGroup, 1)
	ok = poll(5*time.Second, 100*time.Millisecond, func() bool {
		port, _ = tp.tapSTPPort("hv1")
		return port.State == "disabled"
	})
	if !ok {
		t.Fatalf("with bpdu_guard, a BPDU from vm11 left the TAP port %s; want disabled", port.State)
	}
	if !strings.Contains(tp.hvs["hv1"].Proc.Log(), "bpdu guard") {
		t.Errorf("no bpdu guard message in hv1's log")
	}
	if _, err := tp.ping("vm11", tp.vms["vm21"].IP, 4*time.Second, "-c", "2", "-W", "1"); err == nil {
		t.Errorf("vm11 still reaches vm21 through a TAP port disabled by bpdu guard")
	}
}
