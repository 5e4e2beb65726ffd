package main

import (
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
)

// meshDefault is l2wg's default [mesh] protocol.
func meshDefault() string {
	for _, k := range config.Keys {
		if k.Path == "mesh.protocol" {
			s, _ := k.Default.(string)
			return s
		}
	}
	return ""
}

// TestE2EMeshDefaultKernelSTP: nodes whose node.toml names no [mesh]
// protocol run l2wg's default, whatever their host bridge. Under the
// shortest-path default a node on a bridge that runs kernel STP shows the
// mesh on its TAP as the virtual root, speaking standard BPDUs to the
// kernel bridge ([stp] tap auto picks stp), and one on a bridge without STP
// runs the mesh with no tree at the TAP; under a spanning-tree default
// both run the tree.
func TestE2EMeshDefaultKernelSTP(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	tp.addHV("hv1")
	tp.addHV("hv2")
	tp.underlay("hv1", "hv2", "ul", "10.0.0.1", "10.0.0.2")
	if out, err := tp.lab.IP("hv1", "link", "set", "br0", "type", "bridge", "stp_state", "1",
		"hello_time", "100", "forward_delay", "400", "max_age", "600"); err != nil {
		t.Fatalf("kernel stp: %v: %s", err, out)
	}
	tp.makeKeys()
	tp.startL2WG("hv1", nil)
	tp.startL2WG("hv2", nil)
	mesh := meshDefault() == config.MeshShortestPath
	var st1, st2 showStatus
	var bpdusOut uint64
	if !poll(15*time.Second, 100*time.Millisecond, func() bool {
		var err1, err2 error
		st1, err1 = tp.status("hv1")
		st2, err2 = tp.status("hv2")
		bpdusOut = 0
		if err1 == nil && st1.STP != nil {
			for _, p := range st1.STP.Ports {
				if p.Name == st1.Interface.TAP {
					bpdusOut = p.BPDUsOut
				}
			}
		}
		return err1 == nil && err2 == nil && bpdusOut > 0
	}) {
		t.Fatalf("hv1 (kernel STP on br0, no [mesh] protocol) sent no BPDU on its TAP within 15s: %+v", st1.STP)
	}
	if !mesh {
		if st1.Mesh != nil || st2.Mesh != nil || st2.STP == nil {
			t.Errorf("default %q: want the spanning tree on both nodes, no mesh", meshDefault())
		}
		return
	}
	if st1.Mesh == nil || st1.STP.TAPMode != "stp" {
		t.Errorf("hv1 (kernel STP on br0): mesh %v, TAP mode %q; want the mesh, its TAP in stp mode (the virtual root)", st1.Mesh != nil, st1.STP.TAPMode)
	}
	if st2.Mesh == nil {
		t.Errorf("hv2 (no STP on br0) does not run the default shortest-path mesh")
	}
	if st2.STP != nil && st2.STP.TAPMode == "stp" {
		t.Errorf("hv2 (no STP on br0): TAP mode stp, want no BPDUs towards a bridge without STP")
	}
	for _, hv := range []string{"hv1", "hv2"} {
		if log := tp.hvs[hv].Proc.Log(); strings.Contains(log, "level=ERROR") {
			t.Errorf("%s logged an error:\n%s", hv, tail(log, 10))
		}
	}
}
