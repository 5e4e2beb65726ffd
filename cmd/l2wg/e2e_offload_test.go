package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// captureStats is what a packet socket on one interface received during a
// transfer.
type captureStats struct {
	frames   int
	over1514 int // frames longer than a full untagged frame: superframes
	largest  int
	ipv4     int
	frags    int // IPv4 packets with MF set or a fragment offset
	overMTU  int // IPv4 packets longer than the underlay MTU
	largeIP  int
}

// capture counts, in the background, the frames interface ifname of ns
// receives, until the returned stop is called; stop returns the counts.
func (tp *topo) capture(ns, ifname string, mtu int) (stop func() captureStats) {
	tp.t.Helper()
	sock, err := tp.lab.OpenPacket(ns, ifname)
	tp.must(err)
	var (
		st   captureStats
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			f, err := sock.Recv(time.Now().Add(100 * time.Millisecond))
			select {
			case <-done:
				return
			default:
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if err != nil {
				return
			}
			st.add(f, mtu)
		}
	}()
	return func() captureStats {
		close(done)
		wg.Wait()
		sock.Close()
		return st
	}
}

func (st *captureStats) add(f netns.Frame, mtu int) {
	st.frames++
	st.largest = max(st.largest, len(f.Data))
	if len(f.Data) > 1514 {
		st.over1514++
	}
	if len(f.Data) < 14+20 || binary.BigEndian.Uint16(f.Data[12:]) != 0x0800 {
		return
	}
	ip := f.Data[14:]
	st.ipv4++
	total := int(binary.BigEndian.Uint16(ip[2:]))
	st.largeIP = max(st.largeIP, total)
	if total > mtu {
		st.overMTU++
	}
	if flags := binary.BigEndian.Uint16(ip[6:]); flags&0x2000 != 0 || flags&0x1fff != 0 {
		st.frags++
	}
}

// fragCounters are the kernel's IPv4 fragmentation counters of a namespace
// (/proc/net/snmp): fragments made, packets too big to send unfragmented
// (DF set, or fragmentation failed), fragments received to reassemble.
type fragCounters struct{ FragCreates, FragFails, ReasmReqds uint64 }

func (tp *topo) ipFragCounters(ns string) (c fragCounters) {
	tp.t.Helper()
	out, err := tp.lab.Exec(ns, "cat", "/proc/net/snmp")
	tp.must(err)
	var names, values []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && f[0] == "Ip:" {
			if names == nil {
				names = f
			} else {
				values = f
			}
		}
	}
	for i := range names {
		if i >= len(values) {
			break
		}
		v, _ := strconv.ParseUint(values[i], 10, 64)
		switch names[i] {
		case "FragCreates":
			c.FragCreates = v
		case "FragFails":
			c.FragFails = v
		case "ReasmReqds":
			c.ReasmReqds = v
		}
	}
	return c
}

// checkSuperframesNoFragments runs a TCP transfer from VM from (on hv1) to
// VM to (on hv2) while it captures what hv2's TAP receives from l2wg and
// what hv2's underlay interface ul0 receives from hv1. With offload on at
// both ends the TAP gets superframes (frames over 1514 bytes) from l2wg;
// otherwise none. Either way the underlay carries no IP fragment and no
// packet over its MTU (1500), and neither kernel fragments, refuses to send
// for size, or reassembles.
// hv1's underlay interface segments in software (offloads off with
// ethtool), so the capture sees packets as a wire carries them, not the
// 64 KiB UDP GSO buffers wireguard-go hands the kernel.
func (tp *topo) checkSuperframesNoFragments(from, to string, wantSuperframes bool) {
	tp.t.Helper()
	needTools(tp.t, "ethtool")
	if out, err := tp.lab.Exec("hv1", "ethtool", "-K", "ul0", "gso", "off", "tso", "off", "tx-udp-segmentation", "off", "gro", "off"); err != nil {
		tp.t.Fatalf("ethtool -K ul0 in hv1: %v: %s", err, out)
	}
	before1, before2 := tp.ipFragCounters("hv1"), tp.ipFragCounters("hv2")
	stopTAP := tp.capture("hv2", "l2wg0", 1500)
	stopUL := tp.capture("hv2", "ul0", 1500)
	tp.checkTCPTransfer(from, to, 20<<20, 60*time.Second)
	tapSt, ulSt := stopTAP(), stopUL()
	tp.t.Logf("hv2's TAP received %d frames from l2wg, %d over 1514 bytes, the largest %d; hv2's underlay received %d IPv4 packets, the largest %d bytes, %d fragments",
		tapSt.frames, tapSt.over1514, tapSt.largest, ulSt.ipv4, ulSt.largeIP, ulSt.frags)
	if tapSt.frames < 20 || ulSt.ipv4 < 200 {
		tp.t.Fatalf("the captures saw %d frames on hv2's TAP and %d IPv4 packets on its underlay: not the transfer", tapSt.frames, ulSt.ipv4)
	}
	switch {
	case wantSuperframes && tapSt.over1514 == 0:
		tp.t.Errorf("offload on at both ends: no frame over 1514 bytes reached hv2's TAP (largest %d)", tapSt.largest)
	case !wantSuperframes && tapSt.over1514 > 0:
		tp.t.Errorf("a plain TAP at one end: %d frames over 1514 bytes reached hv2's TAP (largest %d)", tapSt.over1514, tapSt.largest)
	}
	if ulSt.frags > 0 || ulSt.overMTU > 0 {
		tp.t.Errorf("hv2's underlay received %d IP fragments and %d packets over 1500 bytes (largest %d)", ulSt.frags, ulSt.overMTU, ulSt.largeIP)
	}
	// The captures sample (a packet socket drops what it cannot keep up
	// with); the kernel's counters see every packet.
	if after1, after2 := tp.ipFragCounters("hv1"), tp.ipFragCounters("hv2"); after1 != before1 || after2 != before2 {
		tp.t.Errorf("IPv4 fragmentation counters moved during the transfer: hv1 %+v -> %+v, hv2 %+v -> %+v", before1, after1, before2, after2)
	}
}

// TestE2ETwoHypervisorsPlainTAPs is the two-hypervisor story with
// [tap] offload = false at both ends: every segment check, and TCP with no
// superframes and no outer fragments.
func TestE2ETwoHypervisorsPlainTAPs(t *testing.T) {
	t.Parallel()
	testOffloadVariant(t, offloads{"hv1": false, "hv2": false})
}

// TestE2ETwoHypervisorsMixedOffload: offload on at hv1, off at hv2. hv1's
// superframes cross the tunnel whole, and hv2 segments them in software for
// its plain TAP.
func TestE2ETwoHypervisorsMixedOffload(t *testing.T) {
	t.Parallel()
	testOffloadVariant(t, offloads{"hv2": false})
}

func testOffloadVariant(t *testing.T, off offloads) {
	tp := newTwoHypervisorsWith(t, true, nil, off, "")
	tp.waitPing("vm11", "vm21", overlayUpTimeout)
	for hv, want := range map[string]bool{"hv1": off.of("hv1"), "hv2": off.of("hv2")} {
		st, err := tp.status(hv)
		tp.must(err)
		if st.Interface.Offload != want {
			t.Fatalf("%s: l2wg show says offload %v; the config says %v", hv, st.Interface.Offload, want)
		}
	}
	checkSegment(t, tp)
	t.Run("f_tcp_no_superframes_no_outer_fragments", func(t *testing.T) {
		tp.on(t).checkSuperframesNoFragments("vm11", "vm21", false)
	})
}
