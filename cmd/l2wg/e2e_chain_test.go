package main

import (
	"fmt"
	"testing"
	"time"
)

// TestE2EChain checks transit: hypervisors A, B and C in a row (A-B and B-C
// underlay cables, no route between A and C), A and C peered only with B.
// The VMs on A and C reach each other with full-size frames through B's
// switch.
func TestE2EChain(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	for _, hv := range []string{"hva", "hvb", "hvc"} {
		tp.addHV(hv)
	}
	tp.underlay("hva", "hvb", "ulab", "10.0.1.1", "10.0.1.2")
	tp.underlay("hvb", "hvc", "ulbc", "10.0.2.2", "10.0.2.3")
	tp.addVM("vma", "hva", "192.168.77.31")
	tp.addVM("vmb", "hvb", "192.168.77.32")
	tp.addVM("vmc", "hvc", "192.168.77.33")
	tp.makeKeys()

	ep := func(ip string) string { return fmt.Sprintf("%s:%d", ip, l2wgPort) }
	tp.startL2WG("hvb", nil,
		peerConf{Name: "hva", Endpoint: ep("10.0.1.1")},
		peerConf{Name: "hvc", Endpoint: ep("10.0.2.3")})
	tp.startL2WG("hva", nil, peerConf{Name: "hvb", Endpoint: ep("10.0.1.2"), Keepalive: 25})
	tp.startL2WG("hvc", nil, peerConf{Name: "hvb", Endpoint: ep("10.0.2.2"), Keepalive: 25})

	// A and C cannot talk directly: transit through B is the only way.
	if out, err := tp.lab.IP("hva", "route", "get", "10.0.2.3"); err == nil {
		t.Fatalf("hva has a route to hvc's underlay: %s", out)
	}

	tp.waitPing("vma", "vmc", overlayUpTimeout)
	tp.checkFullSizePing("vma", "vmc", 20*time.Second)
	tp.checkFullSizePing("vmc", "vma", 20*time.Second)
	tp.checkFullSizePing("vma", "vmb", 20*time.Second)
	tp.checkFullSizePing("vmc", "vmb", 20*time.Second)
}
