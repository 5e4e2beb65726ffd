package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

const meshOpsMetricsListen = "127.0.0.1:9587"

// TestE2EMeshShow: a line of three sites in mesh mode, hva – hvb – hvc
// (hva and hvc do not peer). hva's `l2wg show mesh` names every node with
// its path (hvc through hvb), both links confirmed and in use with hva's
// measured RTT to hvb; --dot renders with dot(1); /metrics has the
// database and the floods.
func TestE2EMeshShow(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	hvs := []string{"hva", "hvb", "hvc"}
	for _, hv := range hvs {
		tp.addHV(hv)
	}
	tp.underlay("hva", "hvb", "ulab", "10.0.1.1", "10.0.1.2")
	tp.underlay("hvb", "hvc", "ulbc", "10.0.2.2", "10.0.2.3")
	tp.addVM("vma", "hva", "192.168.77.51")
	tp.addVM("vmc", "hvc", "192.168.77.53")
	tp.makeKeys()
	ep := func(ip string) string { return fmt.Sprintf("%s:%d", ip, l2wgPort) }
	start := func(name, top string, peers ...peerConf) {
		hv := tp.hvs[name]
		for i := range peers {
			peers[i].PublicKey = tp.hvs[peers[i].Name].Keys.Public
		}
		conf := nodeConf{PrivateKeyFile: filepath.Base(hv.Keys.PrivateFile), ListenPort: l2wgPort,
			TAPName: "l2wg0", Bridge: "br0", STP: meshTable, Peers: peers}
		hv.ConfPath = writeFile(tp.t, tp.dir, name+".toml", top+conf.render())
		p, err := tp.lab.Start(name, l2wgBinary(tp.t), "up", "-c", hv.ConfPath)
		tp.must(err)
		hv.Proc = p
		tp.waitTAP(name)
	}
	start("hva", fmt.Sprintf("metrics_listen = %q\n", meshOpsMetricsListen), peerConf{Name: "hvb", Endpoint: ep("10.0.1.2")})
	start("hvb", "", peerConf{Name: "hva", Endpoint: ep("10.0.1.1")}, peerConf{Name: "hvc", Endpoint: ep("10.0.2.3")})
	start("hvc", "", peerConf{Name: "hvb", Endpoint: ep("10.0.2.2")})
	tp.waitPing("vma", "vmc", 10*time.Second)

	var m control.Mesh
	var last string
	ok := poll(10*time.Second, 100*time.Millisecond, func() bool {
		out, err := tp.lab.Exec("hva", l2wgBinary(t), "show", "--json", "mesh")
		last = string(out)
		if err != nil || json.Unmarshal(out, &m) != nil {
			return false
		}
		return len(m.Nodes) == 3 && len(m.Links) == 2 && m.Links[0].InUse && m.Links[1].InUse && rttOf(&m) > 0
	})
	if !ok {
		t.Fatalf("hva's show mesh never had 3 nodes, 2 links in use and an RTT:\n%s", last)
	}
	// By key: hva names its peers only (hvc is no peer of hva).
	byName := map[string]control.MeshNode{}
	for _, n := range m.Nodes {
		for _, hv := range hvs {
			if n.PublicKey == tp.hvs[hv].Keys.Public {
				byName[hv] = n
			}
		}
	}
	if byName["hvb"].Name != "hvb" || byName["hvc"].Name != "" {
		t.Errorf("names: hvb %q, hvc %q; want hvb, none", byName["hvb"].Name, byName["hvc"].Name)
	}
	if c := byName["hvc"]; !c.Reachable || c.Hops != 2 || len(c.Path) != 3 || c.Path[1] != byName["hvb"].ID || c.NextHop != byName["hvb"].ID {
		t.Errorf("hva's path to hvc: %+v (hvb is %s)", c, byName["hvb"].ID)
	}
	if m.Stats.DatabaseNodes != 3 || m.Stats.SPFRuns == 0 || m.Stats.FloodsIn == 0 || m.Stats.FloodsOut == 0 {
		t.Errorf("stats %+v", m.Stats)
	}
	// Its table computations are timed; it is alone on the LAN behind
	// its TAP, so it is that LAN's appointed forwarder.
	if s := m.Stats; s.SPFSeconds == nil || *s.SPFSeconds <= 0 || s.LastSPFSecs == nil || *s.LastSPFSecs <= 0 || *s.LastSPFSecs > *s.SPFSeconds {
		t.Errorf("SPF time: total %v, latest %v; want measured, latest within the total", s.SPFSeconds, s.LastSPFSecs)
	}
	if m.LAN == nil || !m.LAN.Forwarding || m.LAN.Forwarder != m.Self || len(m.LAN.Nodes) != 1 || m.LAN.Nodes[0] != m.Self {
		t.Errorf("hva's LAN: %+v; want hva (%s) alone and its forwarder", m.LAN, m.Self)
	}
	table, err := tp.lab.Exec("hva", l2wgBinary(t), "show", "mesh")
	if err != nil || !strings.Contains(string(table), " > hvb > "+byName["hvc"].ID) ||
		!strings.Contains(string(table), "lan: appointed forwarder "+m.Self+", this node; on it: "+m.Self+" (self)*") {
		t.Errorf("show mesh: %v\n%s", err, table)
	}
	t.Logf("hva: l2wg show mesh\n%s", table)
	status, err := tp.lab.Exec("hva", l2wgBinary(t), "show")
	if err != nil || !strings.Contains(string(status), "\nmesh: ") || strings.Contains(string(status), "spanning tree:") {
		t.Errorf("show: %v, want a mesh section and no spanning tree\n%s", err, status)
	}
	dot, err := tp.lab.Exec("hva", l2wgBinary(t), "show", "mesh", "--dot")
	if err != nil || strings.Count(string(dot), "style=bold") != 2 {
		t.Errorf("show mesh --dot: %v\n%s", err, dot)
	}
	if path, err := exec.LookPath("dot"); err == nil {
		cmd := exec.Command(path, "-Tsvg")
		cmd.Stdin = strings.NewReader(string(dot))
		svg, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(svg), ">hvb<") {
			t.Errorf("dot -Tsvg: %v\n%.400s", err, svg)
		}
	}

	fams, err := tp.scrapeMetrics("hva", meshOpsMetricsListen)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := metricValue(fams, "l2wg_mesh_database_nodes"); !ok || v != 3 {
		t.Errorf("l2wg_mesh_database_nodes = %v, %v; want 3", v, ok)
	}
	if v, ok := metricValue(fams, "l2wg_mesh_floods_total", "direction", "in"); !ok || v == 0 {
		t.Errorf("l2wg_mesh_floods_total{direction=in} = %v, %v", v, ok)
	}
	if v, ok := metricValue(fams, "l2wg_mesh_spf_seconds_total"); !ok || v <= 0 {
		t.Errorf("l2wg_mesh_spf_seconds_total = %v, %v; want measured", v, ok)
	}
	if v, ok := metricValue(fams, "l2wg_mesh_lan_forwarding"); !ok || v != 1 {
		t.Errorf("l2wg_mesh_lan_forwarding = %v, %v; want 1 (hva forwards for its LAN)", v, ok)
	}
	if _, ok := metricValue(fams, "l2wg_mesh_frame_drops_total", "reason", "reverse-path"); !ok {
		t.Error("l2wg_mesh_frame_drops_total{reason=reverse-path} missing")
	}
	if _, ok := metricValue(fams, "l2wg_stp_root_bridge"); ok {
		t.Error("spanning-tree metrics in mesh mode")
	}
}

// rttOf is the RTT of the first link that has one.
func rttOf(m *control.Mesh) float64 {
	for _, l := range m.Links {
		if l.RTT > 0 {
			return l.RTT
		}
	}
	return 0
}
