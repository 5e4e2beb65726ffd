package main

import (
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
)

// fallbackLine is the warning of a node that runs the spanning tree
// because its host bridge runs STP and node.toml names no protocol.
const fallbackLine = `mesh.protocol not set: host bridge \"br0\" runs STP (stp_state 1)`

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

// TestE2EMeshDefaultKernelSTP: a node whose node.toml names no [mesh]
// protocol, on a host bridge with kernel STP. Under the shortest-path
// default it runs the spanning tree instead (the mesh's TAP speaks no
// 802.1D yet), logs why with the fix, and speaks BPDUs with the kernel
// bridge; under a spanning-tree default it just runs the tree. Next to it,
// a node on a bridge without STP runs the default as it is.
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
	var st1, st2 showStatus
	if !poll(15*time.Second, 100*time.Millisecond, func() bool {
		var err1, err2 error
		st1, err1 = tp.status("hv1")
		st2, err2 = tp.status("hv2")
		return err1 == nil && err2 == nil
	}) {
		t.Fatal("l2wg show does not answer on hv1 and hv2")
	}
	log1, log2 := tp.hvs["hv1"].Proc.Log(), tp.hvs["hv2"].Proc.Log()
	if st1.STP == nil {
		t.Errorf("hv1 (kernel STP on br0, no [mesh] protocol) runs no spanning tree")
	}
	if strings.Contains(log2, "mesh.protocol not set") {
		t.Errorf("hv2 (br0 without STP) fell back:\n%s", tail(log2, 10))
	}
	if meshDefault() != config.MeshShortestPath {
		if strings.Contains(log1, "mesh.protocol not set") {
			t.Errorf("default %q: hv1 logged a fallback:\n%s", meshDefault(), tail(log1, 10))
		}
		return
	}
	if !strings.Contains(log1, fallbackLine) || !strings.Contains(log1, `set [mesh] protocol = \"rstp\" to keep it`) {
		t.Errorf("hv1: no fallback warning %q with the fix in its log:\n%s", fallbackLine, tail(log1, 10))
	}
	if st2.STP != nil {
		t.Errorf("hv2 (no STP on br0) runs the spanning tree, want the default shortest-path mesh")
	}
	// The tree speaks standard BPDUs towards the kernel bridge: the kernel
	// hears a root other than itself or agrees with l2wg's.
	var port showSTPPort
	if !poll(10*time.Second, 200*time.Millisecond, func() bool {
		st, err := tp.show("hv1")
		if err != nil {
			return false
		}
		for _, p := range st.STP.Ports {
			if p.Name == st.Interface.TAP {
				port = p
			}
		}
		return port.BPDUsIn > 0
	}) {
		t.Errorf("hv1's TAP port heard no BPDU from the kernel bridge: %+v", port)
	}
}
