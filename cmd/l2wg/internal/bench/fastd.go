package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// fastd is Debian's fastd in TAP mode, its TAP in the VM bridge, with
// salsa2012+umac, the method fastd's documentation recommends for speed.
// Optional (-fastd).
type fastd struct{}

func (fastd) Key() string       { return "fastd" }
func (fastd) Name() string      { return "fastd tap" }
func (fastd) Path() trafficPath { return vmPath }

const (
	fastdIf     = "fastd0"
	fastdPort   = 10000
	fastdMethod = "salsa2012+umac"
)

// fastdConf is fastd.conf for hypervisor hv.
func fastdConf(hv hypervisor, secret, peerKey string) string {
	return fmt.Sprintf(`log level warn;
interface %q;
mode tap;
method %q;
bind %s:%d;
secret %q;
mtu 1500;
peer "hv%d" {
	key %q;
	remote %s:%d;
}
`, fastdIf, fastdMethod, hv.Underlay, fastdPort, secret, 3-hv.Index, peerKey, hv.Peer, fastdPort)
}

// parseFastdKeys reads the "Secret: <hex>" and "Public: <hex>" lines of
// fastd --generate-key.
func parseFastdKeys(out string) (keyPair, error) {
	var k keyPair
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(line, "Secret:"); ok {
			k.Private = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Public:"); ok {
			k.Public = strings.TrimSpace(v)
		}
	}
	if k.Private == "" || k.Public == "" {
		return k, fmt.Errorf("fastd --generate-key: no Secret and Public lines in %q", out)
	}
	return k, nil
}

func (fastd) Start(ctx context.Context, lab *netns.Lab, dir string) ([]*netns.Proc, error) {
	var keys [2]keyPair
	for i := range keys {
		out, err := tool(ctx, "", "fastd", "--generate-key")
		if err != nil {
			return nil, err
		}
		if keys[i], err = parseFastdKeys(out); err != nil {
			return nil, err
		}
	}
	var procs []*netns.Proc
	for i, hv := range hypervisors {
		conf := filepath.Join(dir, fmt.Sprintf("fastd-hv%d.conf", hv.Index))
		if err := os.WriteFile(conf, []byte(fastdConf(hv, keys[i].Private, keys[1-i].Public)), 0o600); err != nil {
			return procs, err
		}
		p, err := lab.Start(hv.NS, "fastd", "--config", conf)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
		if err := waitLink(ctx, lab, hv.NS, fastdIf, p); err != nil {
			return procs, err
		}
		if err := bridgePort(lab, hv.NS, fastdIf); err != nil {
			return procs, err
		}
	}
	return procs, nil
}
