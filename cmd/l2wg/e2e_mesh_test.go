package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// meshTable is the [stp] body plus a [mesh] table that selects the
// shortest-path mesh ([stp] is not used then; its timers are there to show
// that they do not matter).
const meshTable = shortTimers + "\n[mesh]\nprotocol = \"shortest-path\"\n"

// TestE2EMeshTriangle: three fully meshed sites with [mesh] protocol =
// "shortest-path". No peering is blocked and no forward delay is waited
// out: every pair talks within a second or two of the start, broadcasts are
// answered once, nothing storms. Then one site is killed with -9: the other
// two keep their direct link, with no gap waiting for a tree.
func TestE2EMeshTriangle(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	hvs := []string{"hva", "hvb", "hvc"}
	tp.stp = map[string]string{}
	for _, hv := range hvs {
		tp.addHV(hv)
		tp.stp[hv] = meshTable
	}
	tp.underlay("hva", "hvb", "ulab", "10.0.1.1", "10.0.1.2")
	tp.underlay("hvb", "hvc", "ulbc", "10.0.2.2", "10.0.2.3")
	tp.underlay("hva", "hvc", "ulac", "10.0.3.1", "10.0.3.3")
	tp.addVM("vma", "hva", "192.168.77.41")
	tp.addVM("vmb", "hvb", "192.168.77.42")
	tp.addVM("vmc", "hvc", "192.168.77.43")
	tp.makeKeys()
	ep := func(ip string) string { return fmt.Sprintf("%s:%d", ip, l2wgPort) }
	start := time.Now()
	tp.startL2WG("hva", nil, peerConf{Name: "hvb", Endpoint: ep("10.0.1.2")}, peerConf{Name: "hvc", Endpoint: ep("10.0.3.3")})
	tp.startL2WG("hvb", nil, peerConf{Name: "hva", Endpoint: ep("10.0.1.1")}, peerConf{Name: "hvc", Endpoint: ep("10.0.2.3")})
	tp.startL2WG("hvc", nil, peerConf{Name: "hva", Endpoint: ep("10.0.3.1")}, peerConf{Name: "hvb", Endpoint: ep("10.0.2.2")})
	t.Logf("three l2wg up (TAPs in br0) after %v", time.Since(start).Round(10*time.Millisecond))

	// No forward delay: the first ping passes as soon as the WireGuard
	// sessions are up, about 1 s after the start, or about 5 s when a
	// first handshake initiation reached a peer not yet up (WireGuard
	// retries after its 5 s rekey timeout).
	first := time.Now()
	ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		_, err := tp.ping("vma", tp.vms["vmc"].IP, time.Second, "-c", "1", "-W", "1")
		return err == nil
	})
	if !ok {
		t.Fatalf("vma cannot reach vmc within 10 s of the last start")
	}
	t.Logf("vma reached vmc %v after the last l2wg started", time.Since(first).Round(10*time.Millisecond))
	tp.waitPing("vmb", "vmc", 5*time.Second)
	tp.waitPing("vma", "vmb", 5*time.Second)
	tp.checkNoDuplicates("vma", "vmb", "vmc")
	before := map[string]uint64{}
	for _, hv := range hvs {
		before[hv] = tp.meshRxFrames(hv)
	}
	tp.ping("vma", "192.168.77.255", 5*time.Second, "-b", "-c", "2", "-i", "0.5", "-W", "1")
	time.Sleep(5 * time.Second) // the measurement window itself
	for _, hv := range hvs {
		got := tp.meshRxFrames(hv) - before[hv]
		t.Logf("%s: %d frames received by its switch in 5s", hv, got)
		if got > 2000 {
			t.Errorf("%s: %d frames in 5s: a broadcast storm", hv, got)
		}
	}

	// Kill hvc: vma and vmb keep their direct peering.
	p := tp.hvs["hvc"].Proc
	tp.hvs["hvc"].Proc = nil
	tp.killed = map[string]bool{"hvc": true}
	killed := time.Now()
	if err := p.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	out, err := tp.ping("vma", tp.vms["vmb"].IP, 10*time.Second, "-c", "20", "-i", "0.1", "-W", "1")
	if err != nil {
		t.Fatalf("vma to vmb after hvc's death (%v): %v\n%s", time.Since(killed).Round(time.Millisecond), err, out)
	}
	if !strings.Contains(out, " 0% packet loss") {
		t.Errorf("vma to vmb lost pings after hvc's death, over their direct peering:\n%s", out)
	}
	tp.checkNoDuplicates("vma", "vmb")
	tp.checkFullSizePing("vma", "vmb", 10*time.Second)
}

// meshRxFrames sums the frames received by every switch port of hv (the
// TAP and the mesh port), from l2wg show --json.
func (tp *topo) meshRxFrames(hv string) uint64 {
	tp.t.Helper()
	out, err := tp.lab.Exec(hv, l2wgBinary(tp.t), "show", "--json")
	tp.must(err)
	var st showStatus
	tp.must(json.Unmarshal(out, &st))
	var n uint64
	for _, p := range st.Ports {
		n += p.RxFrames
	}
	return n
}
