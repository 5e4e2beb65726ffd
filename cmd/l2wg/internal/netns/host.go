package netns

import "fmt"

// AddHost creates namespace host, a machine with one interface eth0 whose veth
// peer, port, sits in namespace sw attached to its bridge: a VM on a
// hypervisor's bridge, or a host on a lab switch. eth0 gets the addresses
// cidrs. port must be unique in sw and at most 15 bytes long.
func (l *Lab) AddHost(host, sw, bridge, port string, cidrs ...string) error {
	if err := l.AddNS(host); err != nil {
		return err
	}
	if err := l.Veth(host, "eth0", sw, port); err != nil {
		return err
	}
	if err := l.SetMaster(sw, port, bridge); err != nil {
		return err
	}
	for _, c := range cidrs {
		if err := l.Addr(host, "eth0", c); err != nil {
			return err
		}
	}
	return nil
}

// Link joins namespaces a and b with a veth pair, each end called ifname,
// with address cidrA on a's end and cidrB on b's end (either may be empty):
// an underlay cable.
func (l *Lab) Link(a, b, ifname, cidrA, cidrB string) error {
	if err := l.Veth(a, ifname, b, ifname); err != nil {
		return err
	}
	for _, e := range []struct{ ns, cidr string }{{a, cidrA}, {b, cidrB}} {
		if e.cidr == "" {
			continue
		}
		if err := l.Addr(e.ns, ifname, e.cidr); err != nil {
			return fmt.Errorf("link %s-%s: %w", a, b, err)
		}
	}
	return nil
}
