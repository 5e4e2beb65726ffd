package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// l2wg is the contestant the benchmark is for, configured as the README's
// quick start shows: its TAP in the VM bridge, one peer.
type l2wg struct {
	bin string // l2wg binary
}

func (l2wg) Key() string       { return "l2wg" }
func (l2wg) Name() string      { return "l2wg" }
func (l2wg) Path() trafficPath { return vmPath }

const l2wgTAP = "l2wg0"

// l2wgSTP shortens the spanning-tree timers to the least 802.1D allows, so
// the TAP and peer ports forward 8 s after start instead of 30 s. The data
// path is the same either way.
const l2wgSTP = "[stp]\nhello_time = \"1s\"\nforward_delay = \"4s\"\nmax_age = \"6s\"\n"

// l2wgConf is node.toml for hypervisor hv whose peer has public key peer.
func l2wgConf(hv hypervisor, keyFile, peer string) string {
	return fmt.Sprintf(`private_key_file = %q
listen_port = %d

[tap]
name = %q
bridge = %q

%s
[[peer]]
name = "hv%d"
public_key = %q
endpoint = "%s:%d"
`, keyFile, wgPort, l2wgTAP, bridgeName, l2wgSTP, 3-hv.Index, peer, hv.Peer, wgPort)
}

func (c l2wg) Start(ctx context.Context, lab *netns.Lab, dir string) ([]*netns.Proc, error) {
	var keys [2]keyPair
	for i := range keys {
		var err error
		if keys[i], err = genKeys(ctx, c.bin); err != nil {
			return nil, err
		}
	}
	var procs []*netns.Proc
	for i, hv := range hypervisors {
		keyFile := fmt.Sprintf("l2wg-hv%d.key", hv.Index)
		if err := os.WriteFile(filepath.Join(dir, keyFile), []byte(keys[i].Private+"\n"), 0o600); err != nil {
			return procs, err
		}
		conf := filepath.Join(dir, fmt.Sprintf("l2wg-hv%d.toml", hv.Index))
		if err := os.WriteFile(conf, []byte(l2wgConf(hv, keyFile, keys[1-i].Public)), 0o600); err != nil {
			return procs, err
		}
		p, err := lab.Start(hv.NS, c.bin, "up", "-c", conf)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
		if err := waitLink(ctx, lab, hv.NS, l2wgTAP, p); err != nil {
			return procs, err
		}
	}
	return procs, nil
}
