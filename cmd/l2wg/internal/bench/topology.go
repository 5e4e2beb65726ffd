package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// labBase names the benchmark's namespaces ("l2wgb4711-1-hv1"), apart from
// those of the tests, so CleanupStale of one never touches the other.
const labBase = "l2wgb"

// The topology every contestant gets:
//
//	vm11 ── br0 [hv1] eth0 ══ underlay ══ eth0 [hv2] br0 ── vm21
//
// hv1 and hv2 are the hypervisors, joined by a veth (MTU 1500); each has a
// Linux bridge br0 without an address (STP off) and one VM on a veth port.
// The VPN under test connects the two bridges (or, for the L3 baseline, the
// two hypervisors).
const (
	hv1, hv2   = "hv1", "hv2"
	vm1, vm2   = "vm11", "vm21"
	underlayIf = "eth0"
	bridgeName = "br0"

	underlay1, underlay2 = "10.0.0.1", "10.0.0.2"
	vmAddr1, vmAddr2     = "192.168.77.11", "192.168.77.21"
)

// hypervisor describes one side of the lab for a contestant's setup.
type hypervisor struct {
	NS       string // namespace
	Index    int    // 1 or 2
	Underlay string // own underlay address
	Peer     string // the other hypervisor's underlay address
	PeerNS   string
}

// hypervisors are the two sides, each with the other as its peer.
var hypervisors = [2]hypervisor{
	{NS: hv1, Index: 1, Underlay: underlay1, Peer: underlay2, PeerNS: hv2},
	{NS: hv2, Index: 2, Underlay: underlay2, Peer: underlay1, PeerNS: hv1},
}

// buildTopology makes the hypervisors, the underlay, the bridges and the VMs
// in lab.
func buildTopology(lab *netns.Lab) error {
	for _, ns := range []string{hv1, hv2} {
		if err := lab.AddNS(ns); err != nil {
			return err
		}
		if err := lab.Bridge(ns, bridgeName); err != nil {
			return err
		}
	}
	if err := lab.Link(hv1, hv2, underlayIf, underlay1+"/24", underlay2+"/24"); err != nil {
		return err
	}
	if err := lab.AddHost(vm1, hv1, bridgeName, vm1, vmAddr1+"/24"); err != nil {
		return err
	}
	return lab.AddHost(vm2, hv2, bridgeName, vm2, vmAddr2+"/24")
}

// waitFor calls ok every 100 ms until it returns true, ctx ends or timeout
// passes; what names the awaited condition in the error.
func waitFor(ctx context.Context, timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitLink waits until interface ifname exists in ns (a VPN daemon creates
// its TUN or TAP some time after it starts).
func waitLink(ctx context.Context, lab *netns.Lab, ns, ifname string, p *netns.Proc) error {
	err := waitFor(ctx, 10*time.Second, fmt.Sprintf("%s to create %s/%s", p, ns, ifname), func() bool {
		if done, _ := p.Exited(); done {
			return true // reported below
		}
		ok, err := lab.LinkExists(ns, ifname)
		return err == nil && ok
	})
	if xerr := exited(p); xerr != nil {
		return xerr
	}
	return err
}

// exited returns an error with the end of p's log if p has exited, else nil.
func exited(p *netns.Proc) error {
	done, err := p.Exited()
	if !done {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("exit status 0")
	}
	return fmt.Errorf("%s exited (%v): %s", p, err, tailLines(p.Log(), 3))
}

// tailLines returns the last n non-empty lines of s joined by " | ".
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// bridgePort attaches a VPN's L2 interface to br0 with MTU 1500 and brings
// it up.
func bridgePort(lab *netns.Lab, ns, ifname string) error {
	if err := lab.SetMTU(ns, ifname, 1500); err != nil {
		return err
	}
	if err := lab.SetMaster(ns, ifname, bridgeName); err != nil {
		return err
	}
	return lab.Up(ns, ifname)
}
