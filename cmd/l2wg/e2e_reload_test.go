package main

import (
	"context"
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
		Peers:          peers,
	}
	writeFile(tp.t, tp.dir, hv+".toml", conf.render()+extra)
}

var pingLoss = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// TestE2EReload: a reload that removes one peer and adds another does not
// disturb traffic over an unchanged peer; a bad config changes nothing.
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
	tp.addVM("vm3", "hv3", "192.168.77.53")
	tp.addVM("vm4", "hv4", "192.168.77.54")
	tp.makeKeys()
	// hv1 is the root, as an operator pins it: adding a peer then changes
	// no path but the new one. (A new peer with a better bridge ID would move
	// the root, and RSTP would briefly resync the other ports: that is a
	// change of path, not what this test is about.)
	tp.stp = map[string]string{"hv1": shortTimers + "priority = 4096\n"}
	ep := func(ip string) string { return fmt.Sprintf("%s:%d", ip, l2wgPort) }
	tp.startL2WG("hv1", nil, peerConf{Name: "hv2", Endpoint: ep("10.0.2.2")}, peerConf{Name: "hv3", Endpoint: ep("10.0.3.3")})
	tp.startL2WG("hv2", nil, peerConf{Name: "hv1", Endpoint: ep("10.0.2.1")})
	tp.startL2WG("hv3", nil, peerConf{Name: "hv1", Endpoint: ep("10.0.3.1")})
	tp.startL2WG("hv4", nil, peerConf{Name: "hv1", Endpoint: ep("10.0.4.1")})
	tp.waitPing("vm1", "vm2", overlayUpTimeout)
	tp.waitPing("vm1", "vm3", overlayUpTimeout)

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
