package main

import (
	"bytes"
	"testing"
	"time"
)

// overlayUpTimeout bounds the wait for a fresh overlay to carry a first ping:
// WireGuard handshakes plus, should l2wg hold new ports in listening and
// learning as 802.1D does, two forward delays (2 x 15s).
const overlayUpTimeout = 60 * time.Second

// checkSegment runs the assertions that hold on any working layer-2 segment
// of the two-hypervisor topology, each as a subtest: ARP, full-size frames,
// broadcast, bulk TCP and 802.1Q-tagged frames.
func checkSegment(t *testing.T, tp *topo) {
	t.Run("a_arp_resolves_across", func(t *testing.T) {
		tp.on(t).checkARP("vm11", "vm21")
		tp.on(t).checkARP("vm22", "vm12")
	})
	t.Run("b_full_size_ping_both_ways", func(t *testing.T) {
		tp.on(t).checkFullSizePing("vm11", "vm21", 20*time.Second)
		tp.on(t).checkFullSizePing("vm22", "vm12", 20*time.Second)
	})
	t.Run("c_broadcast_ping_answered_by_all", func(t *testing.T) {
		tp.on(t).checkBroadcastPing("vm11", 20*time.Second, "vm12", "vm21", "vm22")
	})
	t.Run("d_tcp_50MB_same_sha256", func(t *testing.T) {
		tp.on(t).checkTCPTransfer("vm11", "vm21", 50<<20, 60*time.Second)
	})
	t.Run("e_tagged_1518_byte_frames", func(t *testing.T) {
		tp.on(t).checkTaggedFrames("vm11", "vm21", 5*time.Second)
	})
}

// TestE2ETwoHypervisors is the basic story: two hypervisors, each with a
// Linux bridge, two VMs and an l2wg; the four VMs share one segment and the
// hypervisors stay off it.
func TestE2ETwoHypervisors(t *testing.T) {
	t.Parallel()
	tp := newTwoHypervisors(t, true, nil)
	tp.waitPing("vm11", "vm21", overlayUpTimeout)
	checkSegment(t, tp)
	t.Run("f_hypervisors_stay_off_the_segment", func(t *testing.T) {
		tp.on(t).checkHypervisorsOffSegment("vm11", map[string]string{"hv1": "10.0.0.1", "hv2": "10.0.0.2"})
	})
	t.Run("f2_superframes_cross_no_outer_fragments", func(t *testing.T) {
		tp.on(t).checkSuperframesNoFragments("vm11", "vm21", true)
	})
	t.Run("f3_no_address_on_the_taps", func(t *testing.T) {
		for _, hv := range []string{"hv1", "hv2"} {
			out, err := tp.lab.IP(hv, "-o", "addr", "show", "dev", "l2wg0")
			if err != nil || len(bytes.TrimSpace(out)) != 0 {
				t.Errorf("%s: ip addr show dev l2wg0 while l2wg runs: %v\n%s; want no address of any family", hv, err, out)
			}
		}
	})
	t.Run("g_sigterm_exits_0_and_removes_tap", func(t *testing.T) {
		tp.on(t).checkAlive()
		tp.on(t).stopL2WG("hv1")
		tp.on(t).stopL2WG("hv2")
	})
}

// TestE2EIsolateHostOff is the control of assertion f: with isolate_host =
// false on hv2, hv2's kernel answers vm11's ARP request for its underlay
// address through the tunnel. It proves that the probe which must go
// unanswered in TestE2ETwoHypervisors can be answered.
func TestE2EIsolateHostOff(t *testing.T) {
	t.Parallel()
	tp := newTwoHypervisors(t, true, isolation{"hv2": false})
	tp.waitPing("vm11", "vm21", overlayUpTimeout)
	want, err := tp.lab.MAC("hv2", "br0")
	tp.must(err)
	mac, ok := tp.arpProbe("vm11", "10.0.0.2", 10*time.Second)
	if !ok || !bytes.Equal(mac, want) {
		t.Errorf("with isolate_host = false on hv2, vm11's ARP request for 10.0.0.2: answer %v (%v); want hv2's br0 %s",
			mac, ok, want)
	}
}

// TestE2EControlVeth proves the harness: the same topology with the two
// bridges joined by a plain veth cable instead of l2wg must pass every
// segment assertion, and, with nothing isolating the hypervisors, vm11's ARP
// request for hv2's underlay address must be answered.
func TestE2EControlVeth(t *testing.T) {
	t.Parallel()
	tp := newTwoHypervisors(t, false, nil)
	tp.waitPing("vm11", "vm21", 10*time.Second)
	checkSegment(t, tp)
	t.Run("f_control_arp_probe_sees_hypervisor", func(t *testing.T) {
		want, err := tp.lab.MAC("hv2", "br0")
		tp.on(t).must(err)
		mac, ok := tp.on(t).arpProbe("vm11", "10.0.0.2", 5*time.Second)
		if !ok || !bytes.Equal(mac, want) {
			t.Errorf("vm11's ARP request for 10.0.0.2 over a plain cable: answer %v (%v); want hv2's br0 %s", mac, ok, want)
		}
	})
}
