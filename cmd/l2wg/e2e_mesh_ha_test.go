package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/lab"
)

// appointedLine is the log line of a node that becomes its LAN's appointed
// forwarder (node/mesh_edge.go).
const appointedLine = `msg="mesh: appointed forwarder"`

// TestE2EMeshHAPair: site A is two hypervisors, a1 and a2, whose VM bridges
// are one LAN (a veth between their br0s) with a VM on it; both are peered
// with sites B and C, all in shortest-path mode. Exactly one of a1 and a2
// forwards between the LAN and the mesh (broadcast pings get no duplicate);
// kill -9 of the forwarder leaves a gap under 1 s in a 10 ms ping stream
// A -> B; the killed node restarted does not take over (no preemption: the
// incumbent is heard during the inhibition) and makes no duplicate and no
// storm.
// Not parallel: the timing runs alone.
func TestE2EMeshHAPair(t *testing.T) {
	tp := newTopo(t)
	hvs := []string{"a1", "a2", "hvb", "hvc"}
	tp.stp = map[string]string{}
	for _, hv := range hvs {
		tp.addHV(hv)
		tp.stp[hv] = meshTable
	}
	tp.must(tp.lab.Veth("a1", "lan1", "a2", "lan2"))
	tp.must(tp.lab.SetMaster("a1", "lan1", "br0"))
	tp.must(tp.lab.SetMaster("a2", "lan2", "br0"))
	tp.underlay("a1", "hvb", "ula1b", "10.0.1.1", "10.0.1.2")
	tp.underlay("a1", "hvc", "ula1c", "10.0.2.1", "10.0.2.3")
	tp.underlay("a2", "hvb", "ula2b", "10.0.3.1", "10.0.3.2")
	tp.underlay("a2", "hvc", "ula2c", "10.0.4.1", "10.0.4.3")
	tp.underlay("hvb", "hvc", "ulbc", "10.0.5.2", "10.0.5.3")
	tp.addVM("vma", "a1", "192.168.77.81")
	tp.addVM("vmb", "hvb", "192.168.77.82")
	tp.addVM("vmc", "hvc", "192.168.77.83")
	tp.makeKeys()
	ep := func(ip string) string { return fmt.Sprintf("%s:%d", ip, l2wgPort) }
	peers := map[string][]peerConf{
		"a1":  {{Name: "hvb", Endpoint: ep("10.0.1.2")}, {Name: "hvc", Endpoint: ep("10.0.2.3")}},
		"a2":  {{Name: "hvb", Endpoint: ep("10.0.3.2")}, {Name: "hvc", Endpoint: ep("10.0.4.3")}},
		"hvb": {{Name: "a1", Endpoint: ep("10.0.1.1")}, {Name: "a2", Endpoint: ep("10.0.3.1")}, {Name: "hvc", Endpoint: ep("10.0.5.3")}},
		"hvc": {{Name: "a1", Endpoint: ep("10.0.2.1")}, {Name: "a2", Endpoint: ep("10.0.4.1")}, {Name: "hvb", Endpoint: ep("10.0.5.2")}},
	}
	for _, hv := range hvs {
		tp.startL2WG(hv, nil, peers[hv]...)
	}
	// Both of site A are in the mesh (the standby too: it cannot take over
	// without adjacencies; a WireGuard handshake lost at start is retried
	// after 5 s).
	for _, hv := range []string{"a1", "a2"} {
		if !poll(15*time.Second, 50*time.Millisecond, func() bool {
			return strings.Count(tp.hvs[hv].Proc.Log(), `msg="mesh adjacency up"`) >= 2
		}) {
			t.Fatalf("%s: not two mesh adjacencies 15s after the start", hv)
		}
	}
	tp.waitPing("vma", "vmb", 10*time.Second)
	tp.waitPing("vma", "vmc", 10*time.Second)
	tp.checkNoDuplicates("vma", "vmb", "vmc")
	// vmb broadcasts too, so that the standby has seen its address and
	// announces it on the LAN when it takes over (a remote host it never
	// saw a frame from is found again only when that host broadcasts: the
	// LAN's bridges still send its frames towards the old forwarder).
	tp.checkNoDuplicates("vmb", "vma", "vmc")
	fwd := tp.appointed("a1", "a2")
	other := map[string]string{"a1": "a2", "a2": "a1"}[fwd]
	t.Logf("%s is site A's appointed forwarder", fwd)

	// A 10 ms stream vma -> vmb across the kill of the forwarder.
	const after = 4 * time.Second
	p, err := tp.lab.Start("vma", "ping", "-D", "-n", "-i", "0.01", "-W", "1", "-w", fmt.Sprint(int((time.Second+after)/time.Second)+1), tp.vms["vmb"].IP)
	tp.must(err)
	defer p.Stop()
	if !poll(10*time.Second, 20*time.Millisecond, func() bool { return strings.Count(p.Log(), " bytes from ") >= 20 }) {
		t.Fatalf("the ping stream vma -> vmb does not flow:\n%s", tail(p.Log(), 5))
	}
	victim := tp.hvs[fwd].Proc
	tp.hvs[fwd].Proc = nil
	tp.killed = map[string]bool{fwd: true}
	killed := time.Now()
	tp.must(victim.Signal(os.Kill))
	select {
	case <-p.Done():
	case <-time.After(after + 20*time.Second):
		t.Fatalf("the ping stream did not end %v after the kill", after+20*time.Second)
	}
	o, err := lab.MeasureOutage(p.Log(), killed, time.Now())
	if err != nil {
		t.Fatalf("killed %s (site A's forwarder) during a 10 ms ping stream vma -> vmb: %v\n%s", fwd, err, tail(p.Log(), 5))
	}
	t.Logf("killed %s (site A's forwarder): vma -> vmb again %v after the kill, longest gap %v, %d replies after",
		fwd, o.Resumed.Round(time.Millisecond), o.LongestGap.Round(time.Millisecond), o.After)
	if o.Resumed >= time.Second {
		t.Errorf("vma -> vmb again %v after the kill of %s; want under 1s; the stream's gaps over 100 ms:\n%s", o.Resumed, fwd, pingGaps(p.Log(), killed, 100*time.Millisecond))
	}
	if got := tp.appointed(other); got != other {
		t.Fatalf("after the kill of %s, %s does not forward", fwd, other)
	}
	tp.checkNoDuplicates("vma", "vmb", "vmc")

	// The killed node comes back: it hears the incumbent during its
	// inhibition and does not take over.
	delete(tp.killed, fwd)
	mark := len(tp.hvs[other].Proc.Log())
	tp.startL2WG(fwd, nil, peers[fwd]...)
	if !poll(5*time.Second, 20*time.Millisecond, func() bool {
		return strings.Contains(tp.hvs[fwd].Proc.Log(), `msg="mesh: LAN heard"`)
	}) {
		t.Fatalf("%s: no end of the inhibition logged 5s after its restart", fwd)
	}
	tp.waitPing("vma", "vmb", 10*time.Second)
	tp.checkNoDuplicates("vma", "vmb", "vmc")
	if strings.Contains(tp.hvs[fwd].Proc.Log(), appointedLine) {
		t.Errorf("%s took over again after its restart: it should have heard %s, the incumbent", fwd, other)
	}
	if strings.Contains(tp.hvs[other].Proc.Log()[mark:], `msg="mesh: no longer the appointed forwarder"`) {
		t.Errorf("%s gave up forwarding when %s came back", other, fwd)
	}
	before := map[string]uint64{}
	for _, hv := range hvs {
		before[hv] = tp.meshRxFrames(hv)
	}
	tp.ping("vma", "192.168.77.255", 5*time.Second, "-b", "-c", "2", "-i", "0.5", "-W", "1")
	time.Sleep(3 * time.Second) // the measurement window itself
	for _, hv := range hvs {
		got := tp.meshRxFrames(hv) - before[hv]
		t.Logf("%s: %d frames received by its switch in 3s", hv, got)
		if got > 2000 {
			t.Errorf("%s: %d frames in 3s: a broadcast storm", hv, got)
		}
	}
}

// appointed waits until exactly one of the nodes hvs has logged that it is
// its LAN's appointed forwarder, and returns it.
func (tp *topo) appointed(hvs ...string) string {
	tp.t.Helper()
	var got []string
	poll(5*time.Second, 50*time.Millisecond, func() bool {
		got = got[:0]
		for _, hv := range hvs {
			log := tp.hvs[hv].Proc.Log()
			// the last of the two lines counts
			if i := strings.LastIndex(log, appointedLine); i >= 0 && i > strings.LastIndex(log, `msg="mesh: no longer the appointed forwarder"`) {
				got = append(got, hv)
			}
		}
		return len(got) == 1
	})
	if len(got) != 1 {
		tp.t.Fatalf("appointed forwarders among %v: %v, want exactly one", hvs, got)
	}
	return got[0]
}

// pingGaps lists, for a failure's message, the reply lines of a ping -D
// stream on either side of each gap longer than min, with the gap's end
// relative to failed: whether requests were lost in it (icmp_seq skips) or
// the pinger did not send (consecutive, short round trip).
func pingGaps(out string, failed time.Time, min time.Duration) string {
	var b strings.Builder
	var prev time.Time
	var prevLine string
	for _, l := range strings.Split(out, "\n") {
		end := strings.IndexByte(l, ']')
		if !strings.HasPrefix(l, "[") || end < 0 || !strings.Contains(l, " bytes from ") {
			continue
		}
		f, err := strconv.ParseFloat(l[1:end], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(f*1e9))
		if !prev.IsZero() && at.Sub(prev) > min {
			fmt.Fprintf(&b, "  %v ending %v after the failure:\n    %s\n    %s\n", at.Sub(prev).Round(time.Millisecond), at.Sub(failed).Round(time.Millisecond), prevLine, l)
		}
		prev, prevLine = at, l
	}
	return b.String()
}
