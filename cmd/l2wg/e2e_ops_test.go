package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	dto "github.com/prometheus/client_model/go"
)

// Operator tooling end to end: stock wg(8) against a running l2wg, a wg set
// refused, Prometheus metrics that move with traffic, and l2wg capture of a
// ping read back as pcap.

// opsMetricsListen is where hv1's l2wg serves /metrics, inside hv1.
const opsMetricsListen = "127.0.0.1:9586"

// startL2WGWithTop is startL2WG with extra top-level node.toml lines.
func (tp *topo) startL2WGWithTop(name, top string, peers ...peerConf) *hypervisor {
	tp.t.Helper()
	hv := tp.hvs[name]
	for i := range peers {
		if peers[i].PublicKey == "" {
			peers[i].PublicKey = tp.hvs[peers[i].Name].Keys.Public
		}
	}
	conf := nodeConf{
		PrivateKeyFile: filepath.Base(hv.Keys.PrivateFile),
		ListenPort:     l2wgPort,
		TAPName:        "l2wg0",
		Bridge:         "br0",
		Mesh:           tp.mesh,
		Peers:          peers,
	}
	hv.ConfPath = writeFile(tp.t, tp.dir, name+".toml", top+conf.render())
	p, err := tp.lab.Start(name, l2wgBinary(tp.t), "up", "-c", hv.ConfPath)
	tp.must(err)
	hv.Proc = p
	tp.waitTAP(name)
	return hv
}

// wgName is the name under which wg(8) sees the l2wg of lab namespace hv
// (see uapiNames).
func (tp *topo) wgName(hv string) string {
	tp.t.Helper()
	var st syscall.Stat_t
	tp.must(syscall.Stat(tp.lab.Path(hv), &st))
	return uapiNames("l2wg0", netnsID{Name: tp.lab.Name(hv), Inode: st.Ino})[0]
}

// scrapeMetrics GETs /metrics of the l2wg in hv and parses it with the
// Prometheus text parser.
func (tp *topo) scrapeMetrics(hv, addr string) (map[string]*dto.MetricFamily, error) {
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return tp.lab.DialTimeout(hv, network, addr, 2*time.Second)
		}},
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics in %s: %s", hv, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func TestE2EOperations(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	// Metrics and capture of the peer's own switch port: the spanning
	// tree's (the shortest-path mesh has one mesh port for all peers).
	tp.mesh = "rstp"
	needTools(t, "wg")
	tp.addHV("hv1")
	tp.addHV("hv2")
	tp.underlay("hv1", "hv2", "ul0", "10.0.0.1", "10.0.0.2")
	tp.addVM("vm11", "hv1", "192.168.77.11")
	tp.addVM("vm21", "hv2", "192.168.77.21")
	tp.makeKeys()
	tp.startL2WGWithTop("hv1", fmt.Sprintf("metrics_listen = %q\n", opsMetricsListen),
		peerConf{Name: "hv2", Endpoint: fmt.Sprintf("10.0.0.2:%d", l2wgPort)})
	tp.startL2WG("hv2", nil, peerConf{Name: "hv1", Endpoint: fmt.Sprintf("10.0.0.1:%d", l2wgPort), Keepalive: 25})
	tp.waitPing("vm11", "vm21", overlayUpTimeout)
	hv1Pub, hv2Pub := tp.hvs["hv1"].Keys.Public, tp.hvs["hv2"].Keys.Public
	wg1, wg2 := tp.wgName("hv1"), tp.wgName("hv2")

	t.Run("a_wg_show_and_showconf", func(t *testing.T) {
		out, err := tp.lab.Exec("hv1", "wg", "show", wg1)
		if err != nil {
			t.Fatalf("wg show %s: %v\n%s", wg1, err, out)
		}
		t.Logf("wg show %s:\n%s", wg1, out)
		for _, want := range []string{"peer: " + hv2Pub, "endpoint: 10.0.0.2:51820", "latest handshake: ", "listening port: 51820", "transfer: "} {
			if !strings.Contains(string(out), want) {
				t.Errorf("wg show %s lacks %q:\n%s", wg1, want, out)
			}
		}
		out, err = tp.lab.Exec("hv1", "wg", "showconf", wg1)
		if err != nil {
			t.Fatalf("wg showconf %s: %v\n%s", wg1, err, out)
		}
		for _, want := range []string{"[Interface]", "ListenPort = 51820", "[Peer]", "PublicKey = " + hv2Pub, "Endpoint = 10.0.0.2:51820"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("wg showconf %s lacks %q:\n%s", wg1, want, out)
			}
		}
		// Each namespace's l2wg answers for itself: hv2's lists hv1.
		out, err = tp.lab.Exec("hv2", "wg", "show", wg2, "peers")
		if err != nil || strings.TrimSpace(string(out)) != hv1Pub {
			t.Errorf("wg show %s peers: %q, %v; want hv1's key", wg2, out, err)
		}
		out, _ = tp.lab.Exec("hv1", "wg", "show", "interfaces")
		if !strings.Contains(string(out), wg1) || !strings.Contains(string(out), wg2) {
			t.Errorf("wg show interfaces: %q; want %s and %s", out, wg1, wg2)
		}
	})

	t.Run("b_wg_set_refused_peer_keeps_working", func(t *testing.T) {
		out, err := tp.lab.Exec("hv1", "wg", "set", wg1, "peer", hv2Pub, "remove")
		if err == nil || !strings.Contains(string(out), "Operation not permitted") {
			t.Fatalf("wg set %s peer … remove: %v\n%s\nwant it refused with EPERM", wg1, err, out)
		}
		out, err = tp.lab.Exec("hv1", "wg", "show", wg1, "peers")
		if err != nil || strings.TrimSpace(string(out)) != hv2Pub {
			t.Errorf("after the refused remove, wg show peers: %q, %v; want hv2 still there", out, err)
		}
		if out, err := tp.ping("vm11", tp.vms["vm21"].IP, 10*time.Second, "-c", "3", "-i", "0.2", "-W", "2"); err != nil {
			t.Errorf("ping across after the refused wg set: %v\n%s", err, out)
		}
		if log := tp.hvs["hv1"].Proc.Log(); !strings.Contains(log, "wg set refused: change node.toml and run l2wg reload") {
			t.Errorf("hv1's log does not say the wg set was refused:\n%s", tail(log, 20))
		}
	})

	t.Run("c_metrics_move_with_traffic", func(t *testing.T) {
		before, err := tp.scrapeMetrics("hv1", opsMetricsListen)
		if err != nil {
			t.Fatal(err)
		}
		rx0, ok := metricValue(before, "l2wg_port_rx_frames_total", "port", "hv2")
		if !ok {
			t.Fatalf("no l2wg_port_rx_frames_total{port=\"hv2\"} in hv1's metrics")
		}
		const pings = 5
		if out, err := tp.ping("vm11", tp.vms["vm21"].IP, 10*time.Second, "-c", fmt.Sprint(pings), "-i", "0.2", "-W", "2"); err != nil {
			t.Fatalf("ping: %v\n%s", err, out)
		}
		after, err := tp.scrapeMetrics("hv1", opsMetricsListen)
		if err != nil {
			t.Fatal(err)
		}
		if rx1, _ := metricValue(after, "l2wg_port_rx_frames_total", "port", "hv2"); rx1-rx0 < pings {
			t.Errorf("l2wg_port_rx_frames_total{port=\"hv2\"} moved %v -> %v over %d answered pings; want +%d at least", rx0, rx1, pings, pings)
		}
		tx0, _ := metricValue(before, "l2wg_port_tx_frames_total", "port", "l2wg0")
		if tx1, _ := metricValue(after, "l2wg_port_tx_frames_total", "port", "l2wg0"); tx1-tx0 < pings {
			t.Errorf("l2wg_port_tx_frames_total{port=\"l2wg0\"} moved %v -> %v; want +%d at least", tx0, tx1, pings)
		}
		if v, ok := metricValue(after, "l2wg_peer_up", "peer", "hv2"); !ok || v != 1 {
			t.Errorf("l2wg_peer_up{peer=\"hv2\"} = %v (%v); want 1", v, ok)
		}
		if v, ok := metricValue(after, "l2wg_peer_handshake_age_seconds", "peer", "hv2"); !ok || v > 180 {
			t.Errorf("l2wg_peer_handshake_age_seconds{peer=\"hv2\"} = %v (%v); want a recent handshake", v, ok)
		}
		if v, ok := metricValue(after, "l2wg_port_state", "port", "hv2", "state", "forwarding"); !ok || v != 1 {
			t.Errorf("l2wg_port_state{port=\"hv2\",state=\"forwarding\"} = %v (%v); want 1", v, ok)
		}
		if v, ok := metricValue(after, "l2wg_fdb_entries"); !ok || v < 2 {
			t.Errorf("l2wg_fdb_entries = %v (%v); want vm11 and vm21 at least", v, ok)
		}
	})

	t.Run("d_capture_a_ping", func(t *testing.T) {
		file := filepath.Join(tp.dir, "hv1-hv2.pcap")
		p, err := tp.lab.Start("hv1", l2wgBinary(t), "capture", "--port", "hv2", "-w", file, "-d", "4s")
		if err != nil {
			t.Fatal(err)
		}
		// Frames are taken from the moment the client says "writing FILE".
		if !poll(10*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(p.Log(), "writing "+file) }) {
			t.Fatalf("l2wg capture did not start within 10s:\n%s", p.Log())
		}
		out, err := tp.ping("vm11", tp.vms["vm21"].IP, 10*time.Second, "-c", "3", "-i", "0.2", "-W", "2")
		if err != nil {
			t.Fatalf("ping during the capture: %v\n%s", err, out)
		}
		select {
		case <-p.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("l2wg capture -d 4s still running after 10s:\n%s", p.Log())
		}
		capOut := p.Log()
		if _, err := p.Exited(); err != nil {
			t.Fatalf("l2wg capture: %v\n%s", err, capOut)
		}
		if !strings.Contains(capOut, "frames written to") {
			t.Errorf("l2wg capture did not report what it wrote:\n%s", capOut)
		}
		requests, replies := readICMPEchoes(t, file, tp.vms["vm11"].MAC, tp.vms["vm21"].MAC)
		if requests < 3 || replies < 3 {
			t.Errorf("%s holds %d echo requests vm11→vm21 and %d replies vm21→vm11 with the VMs' MACs; want 3 each\n%s", file, requests, replies, capOut)
		}
		if _, err := exec.LookPath("tcpdump"); err == nil {
			out, err := exec.Command("tcpdump", "-n", "-e", "-r", file).CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("ICMP echo request")) || !bytes.Contains(out, []byte("ICMP echo reply")) {
				t.Errorf("tcpdump -r %s: %v\n%s", file, err, out)
			}
		}
	})

	t.Run("e_capture_stopped_by_ctrl_c", func(t *testing.T) {
		file := filepath.Join(tp.dir, "interrupted.pcap")
		p, err := tp.lab.Start("hv1", l2wgBinary(t), "capture", "-Q", "in", "-w", file)
		if err != nil {
			t.Fatal(err)
		}
		// The client announces "writing FILE" once the daemon has started
		// the capture: from then on frames are taken.
		if !poll(10*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(p.Log(), "writing "+file) }) {
			t.Fatalf("l2wg capture did not start within 10s:\n%s", p.Log())
		}
		tp.ping("vm11", tp.vms["vm21"].IP, 5*time.Second, "-c", "2", "-i", "0.2", "-W", "2")
		if err := p.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("l2wg capture did not exit within 5s of SIGINT:\n%s", p.Log())
		}
		if _, err := p.Exited(); err != nil || !strings.Contains(p.Log(), "(interrupted)") {
			t.Errorf("l2wg capture after SIGINT: %v; want exit status 0 and a summary:\n%s", err, p.Log())
		}
		if requests, _ := readICMPEchoes(t, file, tp.vms["vm11"].MAC, tp.vms["vm21"].MAC); requests < 2 {
			t.Errorf("%s: %d echo requests; want 2", file, requests)
		}
	})

	t.Run("e2_control_socket_refuses_other_users", func(t *testing.T) {
		// show, reload and capture (which reads every VM's traffic) as
		// nobody: l2wg's control socket answers only root and its own user.
		bin := nobodyCopy(t, l2wgBinary(t))
		logBefore := tp.hvs["hv1"].Proc.Log()
		for _, args := range [][]string{
			{"show"},
			{"show", "--json", "fdb"},
			{"reload"},
			{"capture", "-w", "-", "-c", "1", "-d", "2s"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			argv := append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)
			out, err := tp.lab.ExecContext(ctx, "hv1", argv...)
			timedOut := ctx.Err() != nil
			cancel()
			if err == nil || timedOut {
				t.Errorf("l2wg %s as uid 65534: %v (timed out: %v); want a refusal with an error exit\n%s", strings.Join(args, " "), err, timedOut, out)
			}
			if bytes.Contains(out, []byte(`"peers"`)) || bytes.Contains(out, []byte("interface: l2wg0")) || bytes.Contains(out, []byte(`"mac"`)) {
				t.Errorf("l2wg %s as uid 65534 printed the node's state:\n%s", strings.Join(args, " "), out)
			}
			// The same command as root works: the refusal is about the uid.
			if args[0] == "show" {
				if out, err := tp.lab.Exec("hv1", append([]string{bin}, args...)...); err != nil {
					t.Errorf("l2wg %s as root: %v\n%s", strings.Join(args, " "), err, out)
				}
			}
		}
		if log := strings.TrimPrefix(tp.hvs["hv1"].Proc.Log(), logBefore); strings.Contains(log, "msg=reload") || strings.Contains(log, "capture") {
			t.Errorf("hv1's l2wg acted on a request from uid 65534:\n%s", log)
		}
	})
	t.Run("f_shutdown_removes_the_wg_socket", func(t *testing.T) {
		path := uapiPath(wg1)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("hv1's wg socket %s: %v", path, err)
		}
		tp.on(t).stopL2WG("hv1")
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after l2wg exited, %s: %v; want it removed", path, err)
		}
		// hv2's socket is not touched.
		if c, err := net.Dial("unix", uapiPath(wg2)); err != nil {
			t.Errorf("hv2's wg socket after hv1 stopped: %v", err)
		} else {
			c.Close()
		}
	})
}

// readICMPEchoes counts the ICMP echo requests from a to b and the replies
// from b to a (by MAC) in a pcap file.
func readICMPEchoes(t *testing.T, file string, a, b net.HardwareAddr) (requests, replies int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("%s: link type %v; want Ethernet", file, r.LinkType())
	}
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		icmp, _ := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if eth == nil || icmp == nil {
			continue
		}
		switch {
		case icmp.TypeCode.Type() == layers.ICMPv4TypeEchoRequest && bytes.Equal(eth.SrcMAC, a) && bytes.Equal(eth.DstMAC, b):
			requests++
		case icmp.TypeCode.Type() == layers.ICMPv4TypeEchoReply && bytes.Equal(eth.SrcMAC, b) && bytes.Equal(eth.DstMAC, a):
			replies++
		}
	}
	return requests, replies
}

// nobodyCopy copies the l2wg binary to a directory that uid 65534 can enter
// (the test's temporary directories are root's alone), removed at the end.
func nobodyCopy(t *testing.T, bin string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "l2wg-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "l2wg")
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
