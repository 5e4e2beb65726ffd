package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// tinc is the classic userspace L2 VPN: Debian's tinc 1.0 in switch mode,
// its TAP in the VM bridge, with its default cipher (Blowfish-CBC) and
// digest (HMAC-SHA1).
type tinc struct{}

func (tinc) Key() string       { return "tinc" }
func (tinc) Name() string      { return "tinc 1.0 switch" }
func (tinc) Path() trafficPath { return vmPath }

const (
	tincIf   = "tinc0"
	tincPort = 655
)

// tincNodeConf is tinc.conf. PMTUDiscovery is off: with it on, tinc answers
// full-size DF frames with frag-needed and a VM's 1472-byte DF ping fails.
// Only hv1 connects; hv2 waits.
func tincNodeConf(hv hypervisor) string {
	s := fmt.Sprintf("Name = hv%d\nMode = switch\nDeviceType = tap\nInterface = %s\nAddressFamily = ipv4\nPMTUDiscovery = no\n",
		hv.Index, tincIf)
	if hv.Index == 1 {
		s += fmt.Sprintf("ConnectTo = hv%d\n", 3-hv.Index)
	}
	return s
}

// tincHostConf is the start of hosts/hvN; tincd -K appends the public key.
func tincHostConf(hv hypervisor) string {
	return fmt.Sprintf("Address = %s\nPort = %d\nPMTUDiscovery = no\n", hv.Underlay, tincPort)
}

func (tinc) Start(ctx context.Context, lab *netns.Lab, dir string) ([]*netns.Proc, error) {
	var confDirs [2]string
	for i, hv := range hypervisors {
		d := filepath.Join(dir, fmt.Sprintf("tinc-hv%d", hv.Index))
		confDirs[i] = d
		if err := os.MkdirAll(filepath.Join(d, "hosts"), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(d, "tinc.conf"), []byte(tincNodeConf(hv)), 0o600); err != nil {
			return nil, err
		}
		host := filepath.Join(d, "hosts", fmt.Sprintf("hv%d", hv.Index))
		if err := os.WriteFile(host, []byte(tincHostConf(hv)), 0o600); err != nil {
			return nil, err
		}
		// Without a terminal, tincd -K writes to the default files without asking.
		if _, err := tool(ctx, "", "tincd", "-c", d, "-K2048"); err != nil {
			return nil, err
		}
	}
	// Each node needs the other's host file (address and public key).
	for i, hv := range hypervisors {
		name := fmt.Sprintf("hv%d", hv.Index)
		b, err := os.ReadFile(filepath.Join(confDirs[i], "hosts", name))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(confDirs[1-i], "hosts", name), b, 0o600); err != nil {
			return nil, err
		}
	}
	var procs []*netns.Proc
	for i, hv := range hypervisors {
		// The default pid file is in /var/run, shared by all namespaces.
		p, err := lab.Start(hv.NS, "tincd", "-c", confDirs[i], "-D", "--pidfile="+filepath.Join(confDirs[i], "tinc.pid"))
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
		if err := waitLink(ctx, lab, hv.NS, tincIf, p); err != nil {
			return procs, err
		}
		if err := bridgePort(lab, hv.NS, tincIf); err != nil {
			return procs, err
		}
	}
	return procs, nil
}
