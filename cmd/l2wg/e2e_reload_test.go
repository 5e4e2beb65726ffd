package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// rewriteConfig writes hypervisor hv's node.toml anew with peers, as
// startL2WG wrote it, and appends extra (raw TOML) at the end.
func (tp *topo) rewriteConfig(hv string, extra string, peers ...peerConf) {
	tp.t.Helper()
	h := tp.hvs[hv]
	for i := range peers {
		if peers[i].PublicKey == "" {
			peers[i].PublicKey = tp.hvs[peers[i].Name].Keys.Public
		}
	}
	conf := nodeConf{
		PrivateKeyFile: filepath.Base(h.Keys.PrivateFile),
		ListenPort:     l2wgPort,
		TAPName:        "l2wg0",
		Bridge:         "br0",
		STP:            tp.stp[hv],
		Mesh:           tp.mesh,
		Peers:          peers,
	}
	writeFile(tp.t, tp.dir, hv+".toml", conf.render()+extra)
}

// peerSessionState is what a reload must not change for an unchanged peer:
// its WireGuard session (the time of its latest handshake, read from
// l2wg show --json, which has it from the device's UAPI), its switch port,
// and the forwarding entries behind that port (l2wg show --json fdb).
type peerSessionState struct {
	// The forwarding entries' ages were read at some instant between
	// from and to (a command in a namespace takes up to a second on a
	// loaded machine).
	from, to  time.Time
	port      int
	handshake time.Time
	fdb       map[string]float64 // MAC -> age in seconds
}

// checkSessionKept checks that hv2's session and port at hv1 are the same in
// before and after.
func (tp *topo) checkSessionKept(what string, before, after peerSessionState) {
	tp.t.Helper()
	if !after.handshake.Equal(before.handshake) {
		tp.t.Errorf("%s: hv2's latest handshake at hv1 moved from %v to %v: the session was not kept", what, before.handshake, after.handshake)
	}
	if after.port != before.port {
		tp.t.Errorf("%s: hv2's port at hv1 was %d and is %d", what, before.port, after.port)
	}
}

func (tp *topo) peerSession(hv, peer string) peerSessionState {
	tp.t.Helper()
	st := peerSessionState{port: -1, fdb: map[string]float64{}}
	out, err := tp.lab.Exec(hv, l2wgBinary(tp.t), "show", "--json")
	if err != nil {
		tp.t.Fatalf("l2wg show in %s: %v: %s", hv, err, out)
	}
	var show struct {
		Peers []struct {
			Name            string     `json:"name"`
			Port            int        `json:"port"`
			LatestHandshake *time.Time `json:"latest_handshake"`
		} `json:"peers"`
	}
	tp.must(json.Unmarshal(out, &show))
	for _, p := range show.Peers {
		if p.Name == peer {
			st.port = p.Port
			if p.LatestHandshake != nil {
				st.handshake = *p.LatestHandshake
			}
		}
	}
	st.from = time.Now()
	out, err = tp.lab.Exec(hv, l2wgBinary(tp.t), "show", "--json", "fdb")
	st.to = time.Now()
	if err != nil {
		tp.t.Fatalf("l2wg show fdb in %s: %v: %s", hv, err, out)
	}
	var fdb []struct {
		MAC  string  `json:"mac"`
		Port int     `json:"port"`
		Name string  `json:"port_name"`
		Age  float64 `json:"age"`
	}
	tp.must(json.Unmarshal(out, &fdb))
	for _, e := range fdb {
		if e.Name == peer && e.Port == st.port {
			st.fdb[e.MAC] = e.Age
		}
	}
	return st
}

var pingLoss = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// TestE2EReload: a reload that removes one peer and adds another does not
// disturb traffic over an unchanged peer, whose session, port and
// forwarding entries stay as they were; a bad config changes nothing.
func TestE2EReload(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	for _, hv := range []string{"hv1", "hv2", "hv3", "hv4"} {
		tp.addHV(hv)
	}
	tp.underlay("hv1", "hv2", "ul2", "10.0.2.1", "10.0.2.2")
	tp.underlay("hv1", "hv3", "ul3", "10.0.3.1", "10.0.3.3")
	tp.underlay("hv1", "hv4", "ul4", "10.0.4.1", "10.0.4.4")
	tp.addVM("vm1", "hv1", "192.168.77.51")
	tp.addVM("vm2", "hv2", "192.168.77.52")
	tp.addVM("vm2q", "hv2", "192.168.77.62") // speaks once, then is quiet
	for _, key := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.eth0.disable_ipv6"} {
		tp.must(tp.lab.Sysctl("vm2q", key, "1")) // no router solicitations, no MLD
	}
	tp.addVM("vm3", "hv3", "192.168.77.53")
	tp.addVM("vm4", "hv4", "192.168.77.54")
	tp.makeKeys()
	// hv1 is the root, as an operator pins it: adding a peer then changes
	// no path but the new one. (A new peer with a better bridge ID would move
	// the root, and RSTP would briefly resync the other ports: that is a
	// change of path, not what this test is about.)
	tp.stp = map[string]string{"hv1": shortTimers + "priority = 4096\n"}
	tp.mesh = "rstp" // the test waits for the tree: every port forwarding, no topology change
	ep := func(ip string) string { return fmt.Sprintf("%s:%d", ip, l2wgPort) }
	tp.startL2WG("hv1", nil, peerConf{Name: "hv2", Endpoint: ep("10.0.2.2")}, peerConf{Name: "hv3", Endpoint: ep("10.0.3.3")})
	tp.startL2WG("hv2", nil, peerConf{Name: "hv1", Endpoint: ep("10.0.2.1")})
	tp.startL2WG("hv3", nil, peerConf{Name: "hv1", Endpoint: ep("10.0.3.1")})
	tp.startL2WG("hv4", nil, peerConf{Name: "hv1", Endpoint: ep("10.0.4.1")})
	tp.waitPing("vm1", "vm2", overlayUpTimeout)
	tp.waitPing("vm1", "vm3", overlayUpTimeout)
	// Every port forwarding (the TAPs too) and no topology change under
	// way: a later one would flush the quiet VM's entry by itself.
	if !poll(stpConverge, 250*time.Millisecond, func() bool {
		for _, hv := range []string{"hv1", "hv2", "hv3"} {
			st, err := tp.show(hv)
			if err != nil || st.STP.TopologyChange {
				return false
			}
			for _, p := range st.STP.Ports {
				if p.State != "forwarding" {
					return false
				}
			}
		}
		return true
	}) {
		t.Fatalf("hv1, hv2 and hv3 do not all forward without a topology change within %v", stpConverge)
	}
	// Static neighbours: the quiet VM and vm1 send no ARP that would
	// refresh its entry after its one ping (and the VM has no IPv6).
	for _, n := range [][2]string{{"vm2q", "vm1"}, {"vm1", "vm2q"}} {
		if out, err := tp.lab.Exec(n[0], "ip", "neigh", "replace", tp.vms[n[1]].IP, "lladdr", tp.vms[n[1]].MAC.String(), "dev", "eth0", "nud", "permanent"); err != nil {
			t.Fatalf("ip neigh in %s: %v: %s", n[0], err, out)
		}
	}
	tp.waitPing("vm2q", "vm1", overlayUpTimeout)
	// The quiet VM's entry grows old enough that one learned again would
	// show: 2 s.
	var before peerSessionState
	quiet := tp.vms["vm2q"].MAC.String()
	if !poll(20*time.Second, 100*time.Millisecond, func() bool {
		before = tp.peerSession("hv1", "hv2")
		return before.fdb[quiet] >= 2
	}) {
		t.Fatalf("the quiet VM's entry at hv1 is not 2s old 20s after its ping: %v", before.fdb)
	}
	if before.handshake.IsZero() || before.port < 0 {
		t.Fatalf("hv1's peer hv2 before the reload: port %d, handshake %v; want a session", before.port, before.handshake)
	}

	// A reload that changes no port's forwarding (hv3's keepalive): hv2's
	// session, port and forwarding entries stay as they were, and the quiet
	// VM's entry ages by the time that passed instead of being learned again.
	tp.rewriteConfig("hv1", "", peerConf{Name: "hv2", Endpoint: ep("10.0.2.2")}, peerConf{Name: "hv3", Endpoint: ep("10.0.3.3"), Keepalive: 25})
	if out, err := tp.lab.Exec("hv1", l2wgBinary(t), "reload"); err != nil || !strings.Contains(string(out), "hv3") {
		t.Fatalf("l2wg reload (hv3's keepalive): %v: %s", err, out)
	}
	after := tp.peerSession("hv1", "hv2")
	tp.checkSessionKept("a reload of hv3's keepalive", before, after)
	// At least this much time passed between the two readings of the
	// ages: an entry kept aged by as much.
	elapsed := after.from.Sub(before.to).Seconds()
	if age0, age1 := before.fdb[quiet], after.fdb[quiet]; age1 < age0+elapsed-0.1 {
		t.Errorf("the quiet VM's forwarding entry was %.1fs old before the reload and %.1fs old at least %.1fs later: flushed and relearned", age0, age1, elapsed)
	} else {
		t.Logf("kept across a reload of hv3's keepalive: handshake %v, port %d, %d entries (the quiet VM's aged %.1fs -> %.1fs)", after.handshake.Format(time.RFC3339Nano), after.port, len(after.fdb), age0, age1)
	}

	// A ping stream over the unchanged peer hv2, across the reload.
	const count = 300
	type result struct {
		out string
		err error
	}
	stream := make(chan result, 1)
	go func() {
		out, err := tp.ping("vm1", tp.vms["vm2"].IP, 30*time.Second, "-i", "0.02", "-c", fmt.Sprint(count), "-W", "1")
		stream <- result{out, err}
	}()
	time.Sleep(time.Second) // let the stream run before the reload (part of the measurement, not a wait for a condition)
	tp.rewriteConfig("hv1", "", peerConf{Name: "hv2", Endpoint: ep("10.0.2.2")}, peerConf{Name: "hv4", Endpoint: ep("10.0.4.4")})
	out, err := tp.lab.Exec("hv1", l2wgBinary(t), "reload")
	if err != nil {
		t.Fatalf("l2wg reload: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "removed peer hv3") || !strings.Contains(string(out), "added peer hv4") {
		t.Errorf("l2wg reload printed %q; want the removal of hv3 and the addition of hv4", out)
	}
	res := <-stream
	m := pingLoss.FindStringSubmatch(res.out)
	if m == nil || m[1] != fmt.Sprint(count) || m[2] != fmt.Sprint(count) {
		t.Errorf("ping stream vm1 -> vm2 across the reload lost packets:\n%s", tail(res.out, 4))
	} else {
		t.Logf("ping stream across the reload: %s of %s received", m[2], m[1])
	}
	// hv2's session and port are kept. hv4's port starting to forward is a
	// topology change: RSTP flushes the entries learned on hv1's other
	// ports (802.1D-2004 17.29.3), and the stream's are learned again from
	// its next frame.
	after = tp.peerSession("hv1", "hv2")
	tp.checkSessionKept("a reload that removed hv3 and added hv4", before, after)
	if _, ok := after.fdb[tp.vms["vm2"].MAC.String()]; !ok {
		t.Errorf("after the stream hv1 has no forwarding entry for vm2 (%s) behind hv2: %v", tp.vms["vm2"].MAC, after.fdb)
	}
	tp.waitPing("vm1", "vm4", overlayUpTimeout)
	if _, err := tp.ping("vm1", tp.vms["vm3"].IP, 5*time.Second, "-c", "2", "-W", "1"); err == nil {
		t.Errorf("vm1 still reaches vm3 after hv3 was removed from hv1's peers")
	}

	// A bad config: the reload fails, says where, and changes nothing.
	tp.rewriteConfig("hv1", "bogus_key = 1\n", peerConf{Name: "hv2", Endpoint: ep("10.0.2.2")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err = tp.lab.ExecContext(ctx, "hv1", l2wgBinary(t), "reload")
	if err == nil || !strings.Contains(string(out), "hv1.toml:") || !strings.Contains(string(out), "bogus_key: unknown field") {
		t.Errorf("bad reload: err %v, output %q; want a failure naming hv1.toml, the line and bogus_key", err, out)
	}
	st, err := tp.show("hv1")
	tp.must(err)
	var names []string
	for _, p := range st.Peers {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "hv2,hv4" && strings.Join(names, ",") != "hv4,hv2" {
		t.Errorf("after a failed reload hv1's peers are %v; want hv2 and hv4 unchanged", names)
	}
	tp.checkFullSizePing("vm1", "vm4", 10*time.Second)
}
