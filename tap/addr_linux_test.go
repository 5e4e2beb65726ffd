package tap

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ipAddrs is what ip -j -d link and ip -j addr say about a link's addresses.
type ipAddrs struct {
	Operstate   string `json:"operstate"`
	AddrGenMode string `json:"inet6_addr_gen_mode"`
	AddrInfo    []struct {
		Family string `json:"family"`
		Local  string `json:"local"`
	} `json:"addr_info"`
}

func (ns *netns) addrs(t *testing.T, name string) ipAddrs {
	t.Helper()
	var link, addr []ipAddrs
	out := ns.ip(t, "-j", "-d", "link", "show", "dev", name)
	if err := json.Unmarshal([]byte(out), &link); err != nil || len(link) != 1 {
		t.Fatalf("ip link show %s: %v: %s", name, err, out)
	}
	out = ns.ip(t, "-j", "addr", "show", "dev", name)
	if err := json.Unmarshal([]byte(out), &addr); err != nil || len(addr) != 1 {
		t.Fatalf("ip addr show %s: %v: %s", name, err, out)
	}
	link[0].AddrInfo = addr[0].AddrInfo
	return link[0]
}

// waitOperUp waits until the kernel's link watcher has seen the carrier of
// a TAP whose carrier was off (operstate UP): that is when the kernel
// generates IPv6 link-local addresses for a link that is up already, some
// time after TUNSETIFF returned. (A TAP created with its carrier on gets
// them at once when it comes up, and its operstate stays UNKNOWN.)
func (ns *netns) waitOperUp(t *testing.T, name string) ipAddrs {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := ns.addrs(t, name)
		if a.Operstate == "UP" {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: operstate %s after 10s, want UP", name, a.Operstate)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (a ipAddrs) String() string {
	var s []string
	for _, ai := range a.AddrInfo {
		s = append(s, ai.Family+" "+ai.Local)
	}
	return strings.Join(s, ", ")
}

// TestNoAddressOnTheTAP: the hypervisor's stack holds no address on the VM
// segment. A TAP that Open creates, in a bridge or not, gets no IPv6
// link-local address once its carrier is up; a persistent TAP left with
// address generation on and a link-local address (by an older l2wg, or by
// hand) loses both when Open reuses it.
func TestNoAddressOnTheTAP(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) is needed")
	}
	paths(t, func(t *testing.T, offload bool) {
		ns := newNetns(t)
		ns.enter(t)
		ns.ip(t, "link", "add", "br0", "type", "bridge")
		ns.ip(t, "link", "set", "br0", "up")
		for _, bridge := range []string{"", "br0"} {
			d := mustOpen(t, Config{Name: "l2wga0", Bridge: bridge, Offload: offload})
			a := ns.addrs(t, "l2wga0")
			if a.AddrGenMode != "none" || len(a.AddrInfo) != 0 {
				t.Errorf("bridge %q: addrgenmode %q, addresses [%s]; want none, none", bridge, a.AddrGenMode, a)
			}
			d.Close()
		}

		// A persistent TAP as an older l2wg left it: eui64 and a link-local
		// address it got while its carrier was up.
		f, _, err := openPlain("l2wgb0", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := setPersist(f, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { exec.Command("ip", "-n", ns.name, "link", "del", "l2wgb0").Run() })
		ns.ip(t, "link", "set", "l2wgb0", "addrgenmode", "eui64")
		ns.ip(t, "link", "set", "l2wgb0", "up")
		a := ns.addrs(t, "l2wgb0")
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(a.String(), "inet6 fe80:"); a = ns.addrs(t, "l2wgb0") {
			if time.Now().After(deadline) {
				t.Fatalf("the old TAP got no link-local address in 10s: [%s]", a)
			}
			time.Sleep(10 * time.Millisecond)
		}
		f.Close()
		for deadline := time.Now().Add(10 * time.Second); ns.addrs(t, "l2wgb0").Operstate != "DOWN"; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the old TAP's operstate is not DOWN 10s after its last descriptor closed")
			}
		}
		if a := ns.addrs(t, "l2wgb0"); !strings.Contains(a.String(), "inet6 fe80:") {
			t.Fatalf("the old TAP lost its link-local address with its carrier: [%s]", a)
		}
		d := mustOpen(t, Config{Name: "l2wgb0", Persistent: true, Offload: offload})
		a = ns.waitOperUp(t, "l2wgb0")
		if a.AddrGenMode != "none" || len(a.AddrInfo) != 0 {
			t.Errorf("reused persistent TAP: addrgenmode %q, addresses [%s]; want none, none", a.AddrGenMode, a)
		}
		d.Close()
	})
}
