package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/wgsock"
)

// l2wgPort is the UDP port every l2wg of a lab listens on (each in its own
// namespace).
const l2wgPort = 51820

// A topo is one test's lab: hypervisor namespaces with a Linux bridge br0
// each, VM namespaces on those bridges, and an l2wg per hypervisor (or, for
// the harness's control, a plain cable between the bridges).
type topo struct {
	t   *testing.T
	lab *netns.Lab
	dir string // configs, keys and logs

	hvs   map[string]*hypervisor
	vms   map[string]*vm
	order []string // hypervisor names in creation order

	killed map[string]bool   // hypervisors whose l2wg a test killed on purpose
	stp    map[string]string // per hypervisor, the [stp] table's body ("": shortTimers)
	// mesh is every hypervisor's [mesh] protocol: "rstp" in the tests of
	// the spanning tree; "" leaves it to l2wg's default.
	mesh    string
	offload offloads // per hypervisor, [tap] offload (absent: the default)
}

// offloads is the [tap] offload setting per hypervisor; a missing one leaves
// the key out of node.toml (default true).
type offloads map[string]bool

// of returns hv's setting, true when absent.
func (o offloads) of(hv string) bool {
	if v, ok := o[hv]; ok {
		return v
	}
	return true
}

// ptr returns hv's setting for nodeConf, nil when absent.
func (o offloads) ptr(hv string) *bool {
	if v, ok := o[hv]; ok {
		return &v
	}
	return nil
}

// A hypervisor is a namespace with a VM bridge br0 and, once started, an l2wg.
type hypervisor struct {
	Name     string
	Keys     keyPair // zero until keys are made
	ConfPath string
	Proc     *netns.Proc
}

// A vm is a namespace with one interface eth0 on a hypervisor's br0.
type vm struct {
	Name string
	HV   string
	IP   string // on vmSubnet, without prefix length
	MAC  net.HardwareAddr
}

// newTopo returns an empty lab for t, removed when t ends. When t fails, the
// logs of every l2wg are printed after they have been stopped.
func newTopo(t *testing.T) *topo {
	t.Helper()
	needRoot(t)
	needTools(t, "ip", "ping")
	dir := t.TempDir()
	lab, err := netns.New("", dir)
	if err != nil {
		t.Fatal(err)
	}
	tp := &topo{t: t, lab: lab, dir: dir, hvs: map[string]*hypervisor{}, vms: map[string]*vm{}}
	t.Cleanup(tp.dumpLogs) // runs after lab.Close: cleanups are LIFO
	t.Cleanup(func() {
		tp.removeStaleUAPISockets()
		if err := lab.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return tp
}

// removeStaleUAPISockets removes the wg(8) sockets in /var/run/wireguard
// that an l2wg of this lab made and could not remove because a test killed
// it with -9. The directory is shared by every namespace; the names derive
// from this lab's namespaces, and a socket a live process answers is left
// alone (a live l2wg removes its own when the lab stops it).
func (tp *topo) removeStaleUAPISockets() {
	for _, ns := range tp.lab.Namespaces() {
		wgsock.RemoveStale("l2wg0", tp.lab.Name(ns), tp.lab.Path(ns))
	}
}

// must fails the test at once on err.
func (tp *topo) must(err error) {
	tp.t.Helper()
	if err != nil {
		tp.t.Fatal(err)
	}
}

// dumpLogs prints the tail of every l2wg log of a failed test, and copies
// the logs to the directory $L2WG_E2E_LOGS when it is set (to read the logs
// of a passing run).
func (tp *topo) dumpLogs() {
	keep := os.Getenv("L2WG_E2E_LOGS")
	for _, name := range tp.order {
		p := tp.hvs[name].Proc
		if p == nil {
			continue
		}
		if tp.t.Failed() {
			tp.t.Logf("log of %s:\n%s", p, tail(p.Log(), 80))
		}
		if keep != "" {
			file := strings.ReplaceAll(tp.t.Name(), "/", "_") + "-" + name + ".log"
			if err := os.MkdirAll(keep, 0o755); err == nil {
				os.WriteFile(filepath.Join(keep, file), []byte(p.Log()), 0o644)
			}
		}
	}
}

// addHV creates hypervisor namespace name with an empty VM bridge br0.
func (tp *topo) addHV(name string) *hypervisor {
	tp.t.Helper()
	tp.must(tp.lab.AddNS(name))
	tp.must(tp.lab.Bridge(name, "br0"))
	hv := &hypervisor{Name: name}
	tp.hvs[name] = hv
	tp.order = append(tp.order, name)
	return hv
}

// addVM creates VM namespace name on hypervisor hv's br0 with address ip/24.
// The VM answers broadcast pings.
func (tp *topo) addVM(name, hv, ip string) *vm {
	tp.t.Helper()
	tp.must(tp.lab.AddHost(name, hv, "br0", "p"+name, ip+"/24"))
	tp.must(tp.lab.Sysctl(name, "net.ipv4.icmp_echo_ignore_broadcasts", "0"))
	mac, err := tp.lab.MAC(name, "eth0")
	tp.must(err)
	v := &vm{Name: name, HV: hv, IP: ip, MAC: mac}
	tp.vms[name] = v
	return v
}

// underlay joins hypervisors a and b with a cable ifname, addresses ipA/24
// and ipB/24.
func (tp *topo) underlay(a, b, ifname, ipA, ipB string) {
	tp.t.Helper()
	tp.must(tp.lab.Link(a, b, ifname, ipA+"/24", ipB+"/24"))
}

// makeKeys gives every hypervisor a key pair made by l2wg genkey/pubkey.
func (tp *topo) makeKeys() {
	tp.t.Helper()
	for _, name := range tp.order {
		tp.hvs[name].Keys = genKeyPair(tp.t, tp.dir, name)
	}
}

// startL2WG writes hv's node.toml and starts l2wg up on it in hv's namespace,
// its TAP l2wg0 in br0. A peer's public key is filled in from the peer's
// hypervisor when empty. It waits for the TAP to be up in br0.
func (tp *topo) startL2WG(name string, isolateHost *bool, peers ...peerConf) *hypervisor {
	tp.t.Helper()
	hv := tp.hvs[name]
	for i := range peers {
		if peers[i].PublicKey == "" {
			peers[i].PublicKey = tp.hvs[peers[i].Name].Keys.Public
		}
	}
	conf := nodeConf{
		PrivateKeyFile: filepath.Base(hv.Keys.PrivateFile), // relative to the config
		ListenPort:     l2wgPort,
		IsolateHost:    isolateHost,
		TAPName:        "l2wg0",
		Bridge:         "br0",
		STP:            tp.stp[name],
		Mesh:           tp.mesh,
		Offload:        tp.offload.ptr(name),
		Peers:          peers,
	}
	hv.ConfPath = writeFile(tp.t, tp.dir, name+".toml", conf.render())
	p, err := tp.lab.Start(name, l2wgBinary(tp.t), "up", "-c", hv.ConfPath)
	tp.must(err)
	hv.Proc = p
	tp.waitTAP(name)
	return hv
}

// waitTAP waits until l2wg's TAP in hv is up and attached to br0.
func (tp *topo) waitTAP(name string) {
	tp.t.Helper()
	hv := tp.hvs[name]
	var last string
	ok := poll(15*time.Second, 50*time.Millisecond, func() bool {
		tp.checkAlive()
		link, err := tp.lab.LinkInfo(name, "l2wg0")
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%+v", link)
		return link.Master == "br0" && link.IsUp()
	})
	if !ok {
		tp.t.Fatalf("%s: TAP l2wg0 not up in br0 after 15s (last: %s)", hv.Proc, last)
	}
}

// checkAlive fails the test at once if an l2wg has exited.
func (tp *topo) checkAlive() {
	tp.t.Helper()
	for _, name := range tp.order {
		p := tp.hvs[name].Proc
		if p == nil {
			continue
		}
		if done, err := p.Exited(); done {
			tp.t.Fatalf("%s exited unexpectedly (%v); log:\n%s", p, err, tail(p.Log(), 60))
		}
	}
}

// stopL2WG sends SIGTERM to hv's l2wg and checks that it exits with status 0
// and takes its TAP with it.
func (tp *topo) stopL2WG(name string) {
	tp.t.Helper()
	hv := tp.hvs[name]
	p := hv.Proc
	if err := p.Stop(); err != nil {
		tp.t.Errorf("%s: SIGTERM: %v; want exit status 0; log:\n%s", p, err, tail(p.Log(), 40))
	}
	gone := poll(3*time.Second, 20*time.Millisecond, func() bool {
		ok, err := tp.lab.LinkExists(name, "l2wg0")
		return err == nil && !ok
	})
	if !gone {
		tp.t.Errorf("%s: TAP l2wg0 still exists 3s after l2wg exited", name)
	}
}

// poll calls cond every interval until it returns true (poll returns true) or
// timeout has passed (poll returns false).
func poll(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// twoHypervisorVMs are the VMs of the two-hypervisor topology and their
// hypervisors.
var twoHypervisorVMs = []struct{ name, hv, ip string }{
	{"vm11", "hv1", "192.168.77.11"},
	{"vm12", "hv1", "192.168.77.12"},
	{"vm21", "hv2", "192.168.77.21"},
	{"vm22", "hv2", "192.168.77.22"},
}

// isolation is the isolate_host setting per hypervisor; a missing one leaves
// the key out of node.toml (default true).
type isolation map[string]bool

// newTwoHypervisors builds the two-hypervisor topology: hv1 and hv2 on an
// underlay cable (10.0.0.1/24, 10.0.0.2/24), each with a bridge br0 and two
// VMs (vm11, vm12 on hv1; vm21, vm22 on hv2; 192.168.77.x/24, x as in the
// name), MTU 1500 everywhere.
//
// With viaL2WG, an l2wg on each hypervisor peers with the other and puts its
// TAP into br0. Without it the two br0s are joined by a plain veth cable: the
// control that proves the assertions pass on a working layer-2 segment.
func newTwoHypervisors(t *testing.T, viaL2WG bool, iso isolation) *topo {
	t.Helper()
	return newTwoHypervisorsWith(t, viaL2WG, iso, nil, "")
}

// newTwoHypervisorsWith is newTwoHypervisors with [tap] offload set per
// hypervisor, and [mesh] protocol mesh ("": l2wg's default).
func newTwoHypervisorsWith(t *testing.T, viaL2WG bool, iso isolation, off offloads, mesh string) *topo {
	t.Helper()
	tp := newTopo(t)
	tp.offload = off
	tp.mesh = mesh
	tp.addHV("hv1")
	tp.addHV("hv2")
	tp.underlay("hv1", "hv2", "ul0", "10.0.0.1", "10.0.0.2")
	for _, v := range twoHypervisorVMs {
		tp.addVM(v.name, v.hv, v.ip)
	}
	if !viaL2WG {
		tp.must(tp.lab.Veth("hv1", "cable", "hv2", "cable"))
		tp.must(tp.lab.SetMaster("hv1", "cable", "br0"))
		tp.must(tp.lab.SetMaster("hv2", "cable", "br0"))
		return tp
	}
	tp.makeKeys()
	isoOf := func(hv string) *bool {
		if v, ok := iso[hv]; ok {
			return &v
		}
		return nil
	}
	tp.startL2WG("hv1", isoOf("hv1"), peerConf{Name: "hv2", Endpoint: fmt.Sprintf("10.0.0.2:%d", l2wgPort)})
	tp.startL2WG("hv2", isoOf("hv2"), peerConf{Name: "hv1", Endpoint: fmt.Sprintf("10.0.0.1:%d", l2wgPort), Keepalive: 25})
	return tp
}

// on returns a copy of tp whose assertions report to t, for subtests (a
// subtest must not fail its parent with FailNow).
func (tp *topo) on(t *testing.T) *topo {
	c := *tp
	c.t = t
	return &c
}
