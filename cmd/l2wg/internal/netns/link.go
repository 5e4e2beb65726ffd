package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/l2wg/l2wg/tap"
)

// commandTimeout bounds every ip(8) call, so a wedged tool fails a test
// instead of hanging it.
const commandTimeout = 30 * time.Second

// run runs a command in the lab process's own namespace and returns its
// combined output. A failure names the command and carries its output.
func run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// IP runs ip(8) with args against the lab namespace ns (ip -n <ns> args...)
// and returns its combined output.
func (l *Lab) IP(ns string, args ...string) ([]byte, error) {
	if !l.hasNS(ns) {
		return nil, fmt.Errorf("ip %s: no netns %q in lab", strings.Join(args, " "), ns)
	}
	return run("ip", append([]string{"-n", l.Name(ns)}, args...)...)
}

// checkIfName rejects interface names the kernel would refuse.
func checkIfName(name string) error {
	if err := tap.ValidName(name); err != nil {
		return fmt.Errorf("interface name %w", err)
	}
	return nil
}

// Veth creates a veth pair with end ifA in namespace nsA and end ifB in nsB
// (nsA may equal nsB) and brings both ends up. The pair is created directly in
// the two namespaces, so the names never meet the host's own interfaces.
func (l *Lab) Veth(nsA, ifA, nsB, ifB string) error {
	for _, n := range []string{ifA, ifB} {
		if err := checkIfName(n); err != nil {
			return fmt.Errorf("add veth %s/%s-%s/%s: %w", nsA, ifA, nsB, ifB, err)
		}
	}
	if !l.hasNS(nsA) || !l.hasNS(nsB) {
		return fmt.Errorf("add veth %s/%s-%s/%s: namespace not in lab", nsA, ifA, nsB, ifB)
	}
	if _, err := run("ip", "link", "add", "name", ifA, "netns", l.Name(nsA),
		"type", "veth", "peer", "name", ifB, "netns", l.Name(nsB)); err != nil {
		return fmt.Errorf("add veth %s/%s-%s/%s: %w", nsA, ifA, nsB, ifB, err)
	}
	if err := l.Up(nsA, ifA); err != nil {
		return err
	}
	return l.Up(nsB, ifB)
}

// Bridge creates a Linux bridge called name in ns with STP off and no
// address, and brings it up. Ports forward as soon as they are attached.
func (l *Lab) Bridge(ns, name string) error {
	if err := checkIfName(name); err != nil {
		return fmt.Errorf("add bridge %s/%s: %w", ns, name, err)
	}
	if _, err := l.IP(ns, "link", "add", "name", name, "type", "bridge", "stp_state", "0"); err != nil {
		return fmt.Errorf("add bridge %s/%s: %w", ns, name, err)
	}
	return l.Up(ns, name)
}

// SetMaster attaches interface ifname in ns to the bridge called bridge.
func (l *Lab) SetMaster(ns, ifname, bridge string) error {
	if _, err := l.IP(ns, "link", "set", "dev", ifname, "master", bridge); err != nil {
		return fmt.Errorf("attach %s/%s to bridge %s: %w", ns, ifname, bridge, err)
	}
	return nil
}

// Addr adds the address cidr ("192.168.77.11/24", "fd00::1/64") to ifname in
// ns. IPv4 addresses get the subnet's broadcast address; IPv6 addresses skip
// duplicate address detection, so they are usable at once.
func (l *Lab) Addr(ns, ifname, cidr string) error {
	args := []string{"addr", "add", cidr, "dev", ifname}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	} else {
		args = append(args, "broadcast", "+")
	}
	if _, err := l.IP(ns, args...); err != nil {
		return fmt.Errorf("add address %s to %s/%s: %w", cidr, ns, ifname, err)
	}
	return nil
}

// Up sets interface ifname in ns administratively up.
func (l *Lab) Up(ns, ifname string) error {
	if _, err := l.IP(ns, "link", "set", "dev", ifname, "up"); err != nil {
		return fmt.Errorf("set %s/%s up: %w", ns, ifname, err)
	}
	return nil
}

// Down sets interface ifname in ns administratively down.
func (l *Lab) Down(ns, ifname string) error {
	if _, err := l.IP(ns, "link", "set", "dev", ifname, "down"); err != nil {
		return fmt.Errorf("set %s/%s down: %w", ns, ifname, err)
	}
	return nil
}

// SetMTU sets the MTU of interface ifname in ns.
func (l *Lab) SetMTU(ns, ifname string, mtu int) error {
	if _, err := l.IP(ns, "link", "set", "dev", ifname, "mtu", fmt.Sprint(mtu)); err != nil {
		return fmt.Errorf("set %s/%s mtu %d: %w", ns, ifname, mtu, err)
	}
	return nil
}

// Sysctl sets the namespaced sysctl key ("net.ipv4.icmp_echo_ignore_broadcasts")
// to value inside ns.
func (l *Lab) Sysctl(ns, key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	err := l.Do(ns, func() error {
		return os.WriteFile(path, []byte(value), 0)
	})
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, ns, err)
	}
	return nil
}

// Interface returns the interface called ifname in ns.
func (l *Lab) Interface(ns, ifname string) (*net.Interface, error) {
	var ifi *net.Interface
	err := l.Do(ns, func() error {
		var err error
		ifi, err = net.InterfaceByName(ifname)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("interface %s/%s: %w", ns, ifname, err)
	}
	return ifi, nil
}

// MAC returns the hardware address of interface ifname in ns.
func (l *Lab) MAC(ns, ifname string) (net.HardwareAddr, error) {
	ifi, err := l.Interface(ns, ifname)
	if err != nil {
		return nil, err
	}
	return ifi.HardwareAddr, nil
}

// LinkExists reports whether ns has an interface called ifname.
func (l *Lab) LinkExists(ns, ifname string) (bool, error) {
	found := false
	err := l.Do(ns, func() error {
		ifs, err := net.Interfaces()
		for _, ifi := range ifs {
			if ifi.Name == ifname {
				found = true
			}
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("list interfaces of %s: %w", ns, err)
	}
	return found, nil
}

// Link is the part of ip(8)'s JSON view of a link that labs look at.
type Link struct {
	Name      string   `json:"ifname"`
	Flags     []string `json:"flags"`
	MTU       int      `json:"mtu"`
	Master    string   `json:"master"`
	OperState string   `json:"operstate"`
	Address   string   `json:"address"`
}

// IsUp reports whether the link is administratively up.
func (k Link) IsUp() bool { return slices.Contains(k.Flags, "UP") }

// LinkInfo returns what ip(8) reports about interface ifname in ns.
func (l *Lab) LinkInfo(ns, ifname string) (Link, error) {
	out, err := l.IP(ns, "-j", "link", "show", "dev", ifname)
	if err != nil {
		return Link{}, err
	}
	var links []Link
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return Link{}, fmt.Errorf("link %s/%s: cannot parse ip -j output %q", ns, ifname, out)
	}
	return links[0], nil
}
