package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// wireguardGoL3 is the transport's own ceiling: the wireguard-go binary of
// the module version l2wg embeds, in TUN mode, hypervisor to hypervisor.
type wireguardGoL3 struct {
	bin string // wireguard-go binary
}

func (wireguardGoL3) Key() string  { return "wg" }
func (wireguardGoL3) Name() string { return "wireguard-go L3" }

// Path runs hypervisor to hypervisor over the tunnel addresses; 1392 bytes
// of ping payload fill the 1420-byte TUN MTU.
func (wireguardGoL3) Path() trafficPath {
	return trafficPath{Client: hv1, Server: hv2, Addr: wgAddr(2), DFSize: wgMTU - 28, UDPLen: wgMTU - 28}
}

func (c wireguardGoL3) Start(ctx context.Context, lab *netns.Lab, dir string) ([]*netns.Proc, error) {
	return startWireguardGo(ctx, lab, dir, c.bin, wgMTU)
}

const (
	// wgMTU is wireguard-go's default TUN MTU, and wg-quick's.
	wgMTU = 1420
	// wgPort is the UDP port of WireGuard on both hypervisors.
	wgPort = 51820
	// uapiDir is where wireguard-go puts its UAPI socket, <name>.sock. It is
	// a file: shared by all namespaces, so the TUN names are unique per
	// machine, not only per namespace.
	uapiDir = "/var/run/wireguard"
)

// wgAddr is the tunnel address of hypervisor i (1 or 2).
func wgAddr(i int) string { return fmt.Sprintf("10.9.0.%d", i) }

// wgIfName is the TUN name of hypervisor i: unique on the machine, because
// the UAPI socket named after it is (see uapiDir).
func wgIfName(i int) string { return fmt.Sprintf("wgb%d.%d", os.Getpid()%1000000, i) }

// startWireguardGo runs wireguard-go on both hypervisors, a TUN with MTU mtu
// and the tunnel addresses 10.9.0.1/24 and 10.9.0.2/24, configured with wg(8)
// over the UAPI socket, each with the other as its peer.
func startWireguardGo(ctx context.Context, lab *netns.Lab, dir, bin string, mtu int) ([]*netns.Proc, error) {
	var keys [2]keyPair
	for i := range keys {
		var err error
		if keys[i], err = genKeys(ctx, "wg"); err != nil {
			return nil, err
		}
	}
	var procs []*netns.Proc
	for i, hv := range hypervisors {
		name := wgIfName(hv.Index)
		p, err := lab.Start(hv.NS, bin, "-f", name)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
		sock := filepath.Join(uapiDir, name+".sock")
		err = waitFor(ctx, 10*time.Second, fmt.Sprintf("%s to open %s", p, sock), func() bool {
			_, err := os.Stat(sock)
			return err == nil || exited(p) != nil
		})
		if xerr := exited(p); xerr != nil {
			return procs, xerr
		}
		if err != nil {
			return procs, err
		}
		keyFile := filepath.Join(dir, fmt.Sprintf("wg-hv%d.key", hv.Index))
		if err := os.WriteFile(keyFile, []byte(keys[i].Private+"\n"), 0o600); err != nil {
			return procs, err
		}
		peer := keys[1-i].Public
		if _, err := lab.Exec(hv.NS, "wg", "set", name,
			"private-key", keyFile, "listen-port", strconv.Itoa(wgPort),
			"peer", peer, "allowed-ips", wgAddr(3-hv.Index)+"/32",
			"endpoint", fmt.Sprintf("%s:%d", hv.Peer, wgPort)); err != nil {
			return procs, err
		}
		if err := lab.Addr(hv.NS, name, wgAddr(hv.Index)+"/24"); err != nil {
			return procs, err
		}
		if err := lab.SetMTU(hv.NS, name, mtu); err != nil {
			return procs, err
		}
		if err := lab.Up(hv.NS, name); err != nil {
			return procs, err
		}
	}
	return procs, nil
}
