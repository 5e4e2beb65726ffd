package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// A contestant is one VPN the benchmark measures. Each repetition gets a
// fresh lab with the topology built (buildTopology) and calls Start on it;
// the lab's Close stops what Start started.
type contestant interface {
	// Key is the short name used by -only ("l2wg", "tinc").
	Key() string
	// Name is the column heading of the report.
	Name() string
	// Path is where the contestant's traffic runs.
	Path() trafficPath
	// Start sets the VPN up in lab, with its files in dir, starts its
	// daemons and returns the processes whose CPU time and memory count.
	Start(ctx context.Context, lab *netns.Lab, dir string) ([]*netns.Proc, error)
}

// trafficPath is where a contestant's traffic runs: between the VMs for the
// L2 VPNs, between the hypervisors' tunnel addresses for the L3 baseline.
type trafficPath struct {
	Client, Server string // namespaces
	Addr           string // the server's address
	DFSize         int    // largest ping payload that must pass with DF set
	UDPLen         int    // iperf3 UDP datagram length
}

// vmPath runs traffic VM to VM: full 1500-byte frames must cross.
var vmPath = trafficPath{Client: vm1, Server: vm2, Addr: vmAddr2, DFSize: 1472, UDPLen: 1472}

// tool runs a program in the benchmark's own namespace with stdin and
// returns its trimmed stdout (key generation: no namespace needed).
func tool(ctx context.Context, stdin string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(string(out)), nil
}

// keyPair is a base64 private key and its public key, as wg genkey and wg
// pubkey (or l2wg genkey and l2wg pubkey) print them.
type keyPair struct{ Private, Public string }

// genKeys makes a key pair with prog's genkey and pubkey commands (prog is
// "wg" or an l2wg binary, whose key commands are wg's).
func genKeys(ctx context.Context, prog string) (keyPair, error) {
	priv, err := tool(ctx, "", prog, "genkey")
	if err != nil {
		return keyPair{}, err
	}
	pub, err := tool(ctx, priv+"\n", prog, "pubkey")
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{Private: priv, Public: pub}, nil
}
