package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
)

const (
	testPriv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
	testPubA = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
	testPubB = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
	testPubC = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
)

// liveState is everything reload can change, as a fake holds it.
type liveState struct {
	Level    slog.Level
	Isolate  bool
	Port     int
	Ageing   time.Duration
	Storm    int
	Guard    bool
	Timers   [4]any // priority, hello, max age, forward delay
	TAPCost  uint32
	TAPVLANs bridge.VLANFilter
	Peers    map[[32]byte]config.Peer
}

// stateOf is the state a node has with c in force.
func stateOf(c *config.Config) liveState {
	s := liveState{
		Level: c.SlogLevel(), Isolate: c.IsolateHost, Port: c.ListenPort, Ageing: c.AgeingTime, Storm: c.StormLimit,
		Guard: c.STP.BPDUGuard, Timers: timersOf(c.STP), TAPCost: c.STP.TAPCost, TAPVLANs: c.TAPVLANs, Peers: make(map[[32]byte]config.Peer),
	}
	for _, p := range c.Peers {
		s.Peers[p.PublicKey] = p
	}
	return s
}

func timersOf(s config.STP) [4]any {
	return [4]any{s.Priority, s.HelloTime, s.MaxAge, s.ForwardDelay}
}

// fakeLive is a node's running state in memory. A setter named in fail
// (as "addPeer" or "addPeer hv3") fails and changes nothing.
type fakeLive struct {
	liveState
	fail  map[string]bool
	calls []string
}

func newFake(c *config.Config) *fakeLive {
	return &fakeLive{liveState: stateOf(c), fail: map[string]bool{}}
}

var errFake = errors.New("injected failure")

func (f *fakeLive) call(name, arg string) error {
	f.calls = append(f.calls, strings.TrimSpace(name+" "+arg))
	if f.fail[name] || (arg != "" && f.fail[name+" "+arg]) {
		return errFake
	}
	return nil
}

func (f *fakeLive) setLogLevel(l slog.Level) { f.call("setLogLevel", ""); f.Level = l }
func (f *fakeLive) setIsolateHost(on bool)   { f.call("setIsolateHost", ""); f.Isolate = on }
func (f *fakeLive) setListenPort(p int) error {
	if err := f.call("setListenPort", ""); err != nil {
		return err
	}
	f.Port = p
	return nil
}
func (f *fakeLive) setAgeing(d time.Duration) { f.call("setAgeing", ""); f.Ageing = d }
func (f *fakeLive) setStormLimit(n int)       { f.call("setStormLimit", ""); f.Storm = n }
func (f *fakeLive) setBPDUGuard(on bool)      { f.call("setBPDUGuard", ""); f.Guard = on }
func (f *fakeLive) setBridgeTimers(s config.STP) error {
	if err := f.call("setBridgeTimers", ""); err != nil {
		return err
	}
	f.Timers = timersOf(s)
	return nil
}
func (f *fakeLive) setTAPCost(c uint32) error {
	if err := f.call("setTAPCost", ""); err != nil {
		return err
	}
	f.TAPCost = c
	return nil
}
func (f *fakeLive) addPeer(p config.Peer) error {
	if err := f.call("addPeer", p.Name); err != nil {
		return err
	}
	if _, ok := f.Peers[p.PublicKey]; ok {
		return fmt.Errorf("add peer %s: already there", p.Name)
	}
	f.Peers[p.PublicKey] = p
	return nil
}
func (f *fakeLive) removePeer(p config.Peer) error {
	if err := f.call("removePeer", p.Name); err != nil {
		return err
	}
	if _, ok := f.Peers[p.PublicKey]; !ok {
		return fmt.Errorf("remove peer %s: no such peer", p.Name)
	}
	delete(f.Peers, p.PublicKey)
	return nil
}
func (f *fakeLive) updatePeer(p config.Peer) error {
	if err := f.call("updatePeer", p.Name); err != nil {
		return err
	}
	old, ok := f.Peers[p.PublicKey]
	if !ok {
		return fmt.Errorf("update peer %s: no such peer", p.Name)
	}
	old.Endpoint, old.PersistentKeepalive = p.Endpoint, p.PersistentKeepalive
	f.Peers[p.PublicKey] = old
	return nil
}
func (f *fakeLive) setTAPVLANs(v bridge.VLANFilter) { f.call("setTAPVLANs", ""); f.TAPVLANs = v }
func (f *fakeLive) setPeerVLANs(p config.Peer) error {
	if err := f.call("setPeerVLANs", p.Name); err != nil {
		return err
	}
	old, ok := f.Peers[p.PublicKey]
	if !ok {
		return fmt.Errorf("peer %s: no such peer", p.Name)
	}
	old.VLANs = p.VLANs
	f.Peers[p.PublicKey] = old
	return nil
}
func (f *fakeLive) setPeerCost(p config.Peer) error {
	if err := f.call("setPeerCost", p.Name); err != nil {
		return err
	}
	old, ok := f.Peers[p.PublicKey]
	if !ok {
		return fmt.Errorf("peer %s: no such peer", p.Name)
	}
	old.Cost = p.Cost
	f.Peers[p.PublicKey] = old
	return nil
}

// baseFile is a node.toml with two peers.
func baseFile() *config.File {
	return &config.File{
		PrivateKeyFile: "node.key",
		TAP:            config.FileTAP{Bridge: "br0"},
		STP:            config.FileSTP{HelloTime: "1s", MaxAge: "6s", ForwardDelay: "5s"},
		Peers: []config.FilePeer{
			{Name: "hv2", PublicKey: testPubA, Endpoint: "192.0.2.2:51820"},
			{Name: "hv3", PublicKey: testPubB, Endpoint: "192.0.2.3:51820", Cost: int64(300)},
		},
	}
}

// load writes f (and the key it names) to a temp dir and parses it.
func load(t *testing.T, f *config.File) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "node.key"), []byte(testPriv+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := config.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "node.toml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// liveCases change each live key (and each kind of peer change) alone.
var liveCases = []struct {
	key    string // the key changed; "peer" for peers added, removed, renamed
	name   string
	change func(f *config.File)
	want   string // in the changes reported
}{
	{"listen_port", "listen_port", func(f *config.File) { f.ListenPort = config.Ptr(51821) }, "listen_port 51821"},
	{"isolate_host", "isolate_host", func(f *config.File) { f.IsolateHost = config.Ptr(false) }, "isolate_host false"},
	{"log_level", "log_level", func(f *config.File) { f.LogLevel = "debug" }, `log_level "debug"`},
	{"switch.ageing_time", "ageing_time", func(f *config.File) { f.Switch.AgeingTime = "60s" }, "switch.ageing_time 1m0s"},
	{"switch.storm_limit", "storm_limit", func(f *config.File) { f.Switch.StormLimit = config.Ptr(1000) }, "switch.storm_limit 1000"},
	{"stp.priority", "priority", func(f *config.File) { f.STP.Priority = config.Ptr(4096) }, "stp priority 4096"},
	{"stp.hello_time", "hello_time", func(f *config.File) { f.STP.HelloTime = "2s" }, "hello_time 2s"},
	{"stp.max_age", "max_age", func(f *config.File) { f.STP.MaxAge = "7s" }, "max_age 7s"},
	{"stp.forward_delay", "forward_delay", func(f *config.File) { f.STP.ForwardDelay = "6s" }, "forward_delay 6s"},
	{"stp.tap_cost", "tap_cost", func(f *config.File) { f.STP.TAPCost = config.Ptr(500) }, "stp.tap_cost 500"},
	{"stp.bpdu_guard", "bpdu_guard", func(f *config.File) { f.STP.BPDUGuard = true }, "stp.bpdu_guard true"},
	{"peer", "peer added", func(f *config.File) { f.Peers = append(f.Peers, config.FilePeer{Name: "hv4", PublicKey: testPubC}) }, "added peer hv4"},
	{"peer", "peer removed", func(f *config.File) { f.Peers = f.Peers[:1] }, "removed peer hv3"},
	{"peer", "peer renamed", func(f *config.File) { f.Peers[1].Name = "hv3b" }, "added peer hv3b"},
	{"peer.endpoint", "peer endpoint", func(f *config.File) { f.Peers[0].Endpoint = "192.0.2.22:51820" }, `peer hv2: endpoint "192.0.2.22:51820"`},
	{"peer.persistent_keepalive", "peer keepalive", func(f *config.File) { f.Peers[0].PersistentKeepalive = config.Ptr(25) }, "persistent_keepalive 25s"},
	{"peer.cost", "peer cost fixed", func(f *config.File) { f.Peers[0].Cost = int64(700) }, "peer hv2: cost 700"},
	{"peer.cost", "peer cost auto", func(f *config.File) { f.Peers[1].Cost = "auto" }, "peer hv3: cost auto"},
	{"tap.vlans", "tap vlans", func(f *config.File) { f.TAP.VLANs = config.Ptr("100-102") }, `tap vlans "100-102", untagged true`},
	{"tap.untagged", "tap untagged", func(f *config.File) { f.TAP.Untagged = config.Ptr(false) }, `tap vlans "all", untagged false`},
	{"peer.vlans", "peer vlans", func(f *config.File) { f.Peers[0].VLANs = config.Ptr("100") }, `peer hv2: vlans "100", untagged true`},
	{"peer.untagged", "peer untagged", func(f *config.File) { f.Peers[1].Untagged = config.Ptr(false) }, `peer hv3: vlans "all", untagged false`},
}

// Every live key of the table has a setter, and every setter a live key.
func TestLiveKeysHaveSetters(t *testing.T) {
	for _, k := range config.Keys {
		peer := strings.HasPrefix(k.Path, "peer.")
		identity := k.Path == "peer.name" || k.Path == "peer.public_key"
		switch {
		case !k.Live || identity:
			if liveKeys[k.Path] != nil || livePeerKeys[k.Path] != nil {
				t.Errorf("%s has a setter but is not live in config.Keys (or names a peer)", k.Path)
			}
		case peer && livePeerKeys[k.Path] == nil:
			t.Errorf("%s is live in config.Keys but has no setter in livePeerKeys", k.Path)
		case !peer && liveKeys[k.Path] == nil:
			t.Errorf("%s is live in config.Keys but has no setter in liveKeys", k.Path)
		}
	}
	tested := map[string]bool{}
	for _, c := range liveCases {
		tested[c.key] = true
	}
	for path := range liveKeys {
		if !tested[path] {
			t.Errorf("live key %s has no case in liveCases", path)
		}
	}
	for path := range livePeerKeys {
		if !tested[path] {
			t.Errorf("live peer key %s has no case in liveCases", path)
		}
	}
}

// Each live key, changed alone, changes the live state to the new config's
// and nothing else, and is reported.
func TestReloadAppliesEveryLiveKey(t *testing.T) {
	for _, c := range liveCases {
		t.Run(c.name, func(t *testing.T) {
			cur := load(t, baseFile())
			f := baseFile()
			c.change(f)
			next := load(t, f)
			fake := newFake(cur)
			changes, err := apply(fake, cur, next)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fake.liveState, stateOf(next)) {
				t.Errorf("live state\n%+v\nwant\n%+v", fake.liveState, stateOf(next))
			}
			if reflect.DeepEqual(stateOf(cur), stateOf(next)) {
				t.Fatal("the case changes nothing")
			}
			if !strings.Contains(strings.Join(changes, "\n"), c.want) {
				t.Errorf("changes %q; want one with %q", changes, c.want)
			}
		})
	}
}

// A config identical to the one in force changes nothing and calls nothing.
func TestReloadUnchanged(t *testing.T) {
	cur, next := load(t, baseFile()), load(t, baseFile())
	fake := newFake(cur)
	changes, err := apply(fake, cur, next)
	if err != nil || len(changes) != 0 || len(fake.calls) != 0 {
		t.Errorf("changes %q, calls %q, err %v; want none", changes, fake.calls, err)
	}
}

// everything changes every live key and every kind of peer change at once.
func everything(f *config.File) {
	for _, c := range liveCases {
		if c.name != "peer removed" && c.name != "peer renamed" {
			c.change(f)
		}
	}
	f.Peers = append(f.Peers[:1], f.Peers[2:]...) // hv3 removed
}

// A step that fails half-way leaves the live state as it was, and the next
// reload (the failure gone) applies the whole config.
func TestReloadFailingStepChangesNothing(t *testing.T) {
	for _, fail := range []string{"setListenPort", "removePeer hv3", "updatePeer hv2", "setPeerCost hv2", "addPeer hv4", "setBridgeTimers", "setTAPCost"} {
		t.Run(fail, func(t *testing.T) {
			cur := load(t, baseFile())
			f := baseFile()
			everything(f)
			next := load(t, f)
			fake := newFake(cur)
			fake.fail[fail] = true
			changes, err := apply(fake, cur, next)
			if !errors.Is(err, errFake) || changes != nil {
				t.Fatalf("changes %q, err %v; want the injected failure and no changes", changes, err)
			}
			if !reflect.DeepEqual(fake.liveState, stateOf(cur)) {
				t.Errorf("after the failure the live state is\n%+v\nwant the old one\n%+v\ncalls %q", fake.liveState, stateOf(cur), fake.calls)
			}
			delete(fake.fail, fail)
			if _, err := apply(fake, cur, next); err != nil {
				t.Fatalf("the next reload: %v", err)
			}
			if !reflect.DeepEqual(fake.liveState, stateOf(next)) {
				t.Errorf("after the next reload the live state is\n%+v\nwant\n%+v", fake.liveState, stateOf(next))
			}
		})
	}
}

// The bug read in the old code: a reload that removed a peer and then
// failed left the removal in force but not in the applied config, so every
// later reload failed on RemovePeer ("no such peer").
func TestReloadFailureAfterRemovingAPeer(t *testing.T) {
	cur := load(t, baseFile())
	f := baseFile()
	f.Peers[1] = config.FilePeer{Name: "hv4", PublicKey: testPubC} // hv3 out, hv4 in
	next := load(t, f)
	fake := newFake(cur)
	fake.fail["addPeer hv4"] = true
	if _, err := apply(fake, cur, next); err == nil {
		t.Fatal("no error")
	}
	if _, ok := fake.Peers[cur.Peers[1].PublicKey]; !ok {
		t.Fatal("hv3 stays removed after the failed reload")
	}
	delete(fake.fail, "addPeer hv4")
	if _, err := apply(fake, cur, next); err != nil {
		t.Fatalf("the reload after: %v", err)
	}
}

// The lab's case: isolate_host = false with a listen_port another socket
// holds. The old code turned host isolation off, then failed on the port.
func TestReloadIsolateHostStaysWhenListenPortFails(t *testing.T) {
	cur := load(t, baseFile())
	f := baseFile()
	f.IsolateHost = config.Ptr(false)
	f.ListenPort = config.Ptr(51999)
	next := load(t, f)
	fake := newFake(cur)
	fake.fail["setListenPort"] = true
	if _, err := apply(fake, cur, next); !errors.Is(err, errFake) || !strings.Contains(err.Error(), "listen_port 51999") {
		t.Fatalf("err %v; want the listen_port failure, named", err)
	}
	if !fake.Isolate {
		t.Error("host isolation is off after the failed reload")
	}
}

// A change of a restart-only key is refused, naming file, line and key, and
// nothing at all is applied, not even the live keys changed with it.
func TestReloadRefusesRestartOnlyKeys(t *testing.T) {
	cases := map[string]func(f *config.File){
		"tap.name":                      func(f *config.File) { f.TAP.Name = "vms1" },
		"tap.mtu":                       func(f *config.File) { f.TAP.MTU = config.Ptr(9000) },
		"tap.bridge":                    func(f *config.File) { f.TAP.Bridge = "br1" },
		"tap.persistent":                func(f *config.File) { f.TAP.Persistent = true },
		"tap.offload":                   func(f *config.File) { f.TAP.Offload = config.Ptr(false) },
		"tunnel.mtu":                    func(f *config.File) { f.Tunnel.MTU = config.Ptr(1400) },
		"tunnel.probe_interval":         func(f *config.File) { f.Tunnel.ProbeInterval = "1s" },
		"tunnel.probe_loss":             func(f *config.File) { f.Tunnel.ProbeLoss = config.Ptr(5) },
		"tunnel.reassembly_timeout":     func(f *config.File) { f.Tunnel.ReassemblyTimeout = "5s" },
		"tunnel.reassembly_peer_bytes":  func(f *config.File) { f.Tunnel.ReassemblyPeerBytes = config.Ptr(1 << 20) },
		"tunnel.reassembly_total_bytes": func(f *config.File) { f.Tunnel.ReassemblyTotalBytes = config.Ptr(1 << 20) },
		"tunnel.reresolve_after":        func(f *config.File) { f.Tunnel.ReresolveAfter = "10s" },
		"switch.max_fdb_entries":        func(f *config.File) { f.Switch.MaxFDBEntries = config.Ptr(100) },
		"stp.enabled":                   func(f *config.File) { f.STP.Enabled = config.Ptr(false) },
		"stp.tap":                       func(f *config.File) { f.STP.TAP = "edge" },
		"stp.protocol":                  func(f *config.File) { f.STP.Protocol = "stp" },
		"mesh.protocol":                 func(f *config.File) { f.Mesh.Protocol = "stp" }, // not the default, whichever it is
		"metrics_listen":                func(f *config.File) { f.MetricsListen = "127.0.0.1:9586" },
	}
	for _, k := range config.Keys {
		if !k.Live && k.Path != "private_key_file" && cases[k.Path] == nil {
			t.Errorf("restart-only key %s has no case", k.Path)
		}
	}
	for key, change := range cases {
		t.Run(key, func(t *testing.T) {
			cur := load(t, baseFile())
			f := baseFile()
			change(f)
			f.IsolateHost = config.Ptr(false) // a live change along with it
			f.Peers = f.Peers[:1]
			next := load(t, f)
			fake := newFake(cur)
			_, err := apply(fake, cur, next)
			want := fmt.Sprintf("%s:%d: %s: changed from ", next.File, next.Line(key), key)
			if err == nil || !strings.Contains(err.Error(), want) || next.Line(key) == 0 {
				t.Errorf("err %v; want it to contain %q", err, want)
			}
			if len(fake.calls) != 0 {
				t.Errorf("calls %q; want none", fake.calls)
			}
		})
	}
}
