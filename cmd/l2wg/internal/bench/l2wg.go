package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
	"github.com/l2wg/l2wg/tunnel"
)

// l2wg is the contestant the benchmark is for, configured as the README's
// quick start shows: its TAP in the VM bridge, one peer.
type l2wg struct {
	bin      string // l2wg binary
	protocol string // [mesh] protocol; "": l2wg's default
	b        bool   // the second binary (-l2wg-b)
}

func (c l2wg) Key() string {
	if c.b {
		return "l2wg-b"
	}
	return "l2wg"
}
func (c l2wg) Name() string    { return c.Key() }
func (l2wg) Path() trafficPath { return vmPath }

const l2wgTAP = "l2wg0"

// l2wgConf is node.toml for hypervisor hv whose peer has public key peer,
// with [mesh] protocol ("": l2wg's default).
// The spanning-tree timers are the least 802.1D allows, so that under a
// spanning tree the TAP and peer ports forward 8 s after start instead of
// 30 s; the shortest-path mesh (the default) does not use them.
func l2wgConf(hv hypervisor, keyFile, peer, protocol string) []byte {
	data, err := config.Marshal(&config.File{
		PrivateKeyFile: keyFile,
		ListenPort:     config.Ptr(wgPort),
		TAP:            config.FileTAP{Name: l2wgTAP, Bridge: bridgeName},
		STP:            config.FileSTP{HelloTime: "1s", ForwardDelay: "4s", MaxAge: "6s"},
		Mesh:           config.FileMesh{Protocol: protocol},
		Peers: []config.FilePeer{{
			Name: fmt.Sprintf("hv%d", 3-hv.Index), PublicKey: peer,
			Endpoint: net.JoinHostPort(hv.Peer, strconv.Itoa(wgPort)),
		}},
	})
	if err != nil {
		panic(err) // a File always encodes
	}
	return data
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
		if err := os.WriteFile(conf, l2wgConf(hv, keyFile, keys[1-i].Public, c.protocol), 0o600); err != nil {
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

// idleNS is the namespace of the node with idlePeers peers.
const idleNS = "idle"

// idleRSS starts one more l2wg in a namespace of its own, with a TAP in no
// bridge and idlePeers peers at loopback endpoints where nothing listens
// (so it keeps trying handshakes), lets it idle for seconds and returns its
// peak RSS.
func (c l2wg) idleRSS(ctx context.Context, lab *netns.Lab, dir string, seconds int) (int64, error) {
	if err := lab.AddNS(idleNS); err != nil {
		return 0, err
	}
	key, err := genKeys(ctx, c.bin)
	if err != nil {
		return 0, err
	}
	keyFile := "l2wg-idle.key"
	if err := os.WriteFile(filepath.Join(dir, keyFile), []byte(key.Private+"\n"), 0o600); err != nil {
		return 0, err
	}
	f := &config.File{
		PrivateKeyFile: keyFile,
		ListenPort:     config.Ptr(wgPort),
		TAP:            config.FileTAP{Name: l2wgTAP},
		STP:            config.FileSTP{HelloTime: "1s", ForwardDelay: "4s", MaxAge: "6s"},
	}
	for i := range idlePeers {
		var priv [32]byte
		if _, err := rand.Read(priv[:]); err != nil {
			return 0, err
		}
		pub := tunnel.PublicKey(priv)
		f.Peers = append(f.Peers, config.FilePeer{
			Name: fmt.Sprintf("p%d", i), PublicKey: base64.StdEncoding.EncodeToString(pub[:]),
			Endpoint: net.JoinHostPort(fmt.Sprintf("127.0.0.%d", 2+i), strconv.Itoa(wgPort)),
		})
	}
	data, err := config.Marshal(f)
	if err != nil {
		return 0, err
	}
	conf := filepath.Join(dir, "l2wg-idle.toml")
	if err := os.WriteFile(conf, data, 0o600); err != nil {
		return 0, err
	}
	p, err := lab.Start(idleNS, c.bin, "up", "-c", conf)
	if err != nil {
		return 0, err
	}
	defer p.Stop()
	if err := waitLink(ctx, lab, idleNS, l2wgTAP, p); err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(time.Duration(seconds) * time.Second):
	}
	if err := exited(p); err != nil {
		return 0, err
	}
	return peakRSS([]int{p.PID})
}
