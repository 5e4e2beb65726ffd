package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EEndpointFollowsDNS: hv1 dials hv2 by the name hv2.l2wg.test, which
// hv1's /etc/hosts (ip netns exec mounts /etc/netns/<ns>/hosts over it)
// gives as 10.0.2.2. hv2 answers but cannot dial (a stateful firewall drops
// the flows it would start), as a site behind a dynamic address whose peers
// dial it. hv2 moves to 10.0.2.3: VMs lose each other, and WireGuard's
// roaming cannot help. The name's entry changes: with reresolve_after = 2s
// hv1 resolves it again, logs the new endpoint at info, and the VMs reach
// each other again with neither l2wg restarted.
func TestE2EEndpointFollowsDNS(t *testing.T) {
	t.Parallel()
	needTools(t, "nft")
	tp := newTopo(t)
	tp.addHV("hv1")
	tp.addHV("hv2")
	tp.underlay("hv1", "hv2", "ul2", "10.0.2.1", "10.0.2.2")
	tp.addVM("vm1", "hv1", "192.168.77.71")
	tp.addVM("vm2", "hv2", "192.168.77.72")
	tp.makeKeys()

	hostsDir := filepath.Join("/etc/netns", tp.lab.Name("hv1"))
	_, statErr := os.Stat("/etc/netns")
	t.Cleanup(func() {
		os.RemoveAll(hostsDir)
		if statErr != nil {
			os.Remove("/etc/netns") // made here; only if empty
		}
	})
	tp.must(os.MkdirAll(hostsDir, 0o755))
	setHosts := func(addr string) {
		// In place: the bind mount holds this inode, a rename would not show.
		tp.must(os.WriteFile(filepath.Join(hostsDir, "hosts"), []byte("127.0.0.1 localhost\n"+addr+" hv2.l2wg.test\n"), 0o644))
	}
	setHosts("10.0.2.2")
	rules := writeFile(t, tp.dir, "hv2.nft", fmt.Sprintf("table inet dialout {\n chain out {\n  type filter hook output priority 0;\n  udp sport %d ct state new drop\n }\n}\n", l2wgPort))
	if out, err := tp.lab.Exec("hv2", "nft", "-f", rules); err != nil {
		t.Fatalf("nft in hv2: %v: %s", err, out)
	}

	start := func(name string, extra string, peer peerConf) {
		hv := tp.hvs[name]
		peer.PublicKey = tp.hvs[peer.Name].Keys.Public
		conf := nodeConf{PrivateKeyFile: filepath.Base(hv.Keys.PrivateFile), ListenPort: l2wgPort, TAPName: "l2wg0", Bridge: "br0", Peers: []peerConf{peer}}
		hv.ConfPath = writeFile(t, tp.dir, name+".toml", conf.render()+extra)
		p, err := tp.lab.Start(name, l2wgBinary(t), "up", "-c", hv.ConfPath)
		tp.must(err)
		hv.Proc = p
		tp.waitTAP(name)
	}
	start("hv2", "", peerConf{Name: "hv1"})
	start("hv1", "\n[tunnel]\nreresolve_after = \"2s\"\n", peerConf{Name: "hv2", Endpoint: fmt.Sprintf("hv2.l2wg.test:%d", l2wgPort)})
	tp.waitPing("vm1", "vm2", overlayUpTimeout)

	// hv2 moves (the old address first: deleting a primary address deletes
	// the secondaries of its subnet).
	for _, argv := range [][]string{{"ip", "addr", "del", "10.0.2.2/24", "dev", "ul2"}, {"ip", "addr", "add", "10.0.2.3/24", "dev", "ul2"}} {
		if out, err := tp.lab.Exec("hv2", argv...); err != nil {
			t.Fatalf("%v: %v: %s", argv, err, out)
		}
	}
	// While the name still says 10.0.2.2, nothing gets across: 3 pings over
	// more than the stale threshold and a few re-resolutions.
	if out, err := tp.ping("vm1", tp.vms["vm2"].IP, 10*time.Second, "-c", "3", "-W", "1", "-i", "1"); err == nil || !strings.Contains(out, " 0 received") {
		t.Fatalf("vm2 still answers after hv2 moved away from the address hv1 has (err %v); the test proves nothing:\n%s", err, out)
	}
	setHosts("10.0.2.3")
	moved := time.Now()
	tp.waitPing("vm1", "vm2", 30*time.Second)
	t.Logf("vm1 reaches vm2 again %s after hv2.l2wg.test changed (reresolve_after 2s; Go re-reads /etc/hosts at most every 5s)", time.Since(moved).Round(100*time.Millisecond))
	tp.waitPing("vm2", "vm1", 10*time.Second)

	logText, err := os.ReadFile(tp.hvs["hv1"].Proc.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`level=INFO msg="peer endpoint re-resolved" peer=hv2 endpoint=hv2.l2wg.test:%d from=10.0.2.2:%d to=10.0.2.3:%d`, l2wgPort, l2wgPort, l2wgPort)
	if !strings.Contains(string(logText), want) {
		t.Errorf("hv1's log has no %q:\n%s", want, tail(string(logText), 30))
	}
	tp.checkAlive() // neither l2wg restarted
}
