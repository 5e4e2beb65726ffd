package main

import (
	"context"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// wireguardGoVXLAN is the recipe l2wg replaces: wireguard-go in TUN mode
// between the hypervisors, and a kernel VXLAN device on the tunnel addresses
// in each VM bridge. Only wireguard-go's CPU is counted: the kernel's VXLAN
// and bridge work shows in no process.
type wireguardGoVXLAN struct {
	bin string // wireguard-go binary
}

func (wireguardGoVXLAN) Key() string       { return "vxlan" }
func (wireguardGoVXLAN) Name() string      { return "wireguard-go + VXLAN" }
func (wireguardGoVXLAN) Path() trafficPath { return vmPath }

const (
	vxlanName = "vx0"
	vxlanID   = "42"
	vxlanPort = "4789"
	// vxlanWGMTU is the TUN MTU that lets a whole VXLAN packet with a
	// 1514-byte frame (1550 bytes) into the tunnel. A VXLAN device in a
	// bridge does not fragment, even with "df unset": with the usual 1420 it
	// answers a VM's full-size frame with frag-needed (mtu 1450). wireguard-go
	// then sends 1612-byte datagrams, which the kernel fragments on the
	// underlay.
	vxlanWGMTU = 1560
)

func (c wireguardGoVXLAN) Start(ctx context.Context, lab *netns.Lab, dir string) ([]*netns.Proc, error) {
	procs, err := startWireguardGo(ctx, lab, dir, c.bin, vxlanWGMTU)
	if err != nil {
		return procs, err
	}
	for _, hv := range hypervisors {
		if _, err := lab.IP(hv.NS, "link", "add", vxlanName, "type", "vxlan", "id", vxlanID,
			"local", wgAddr(hv.Index), "remote", wgAddr(3-hv.Index), "dstport", vxlanPort, "df", "unset"); err != nil {
			return procs, err
		}
		if err := bridgePort(lab, hv.NS, vxlanName); err != nil {
			return procs, err
		}
	}
	return procs, nil
}
