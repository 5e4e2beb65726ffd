package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// results are the samples of a run: Samples[rep][i] belongs to
// Contestants[i].
type results struct {
	Contestants []contestant
	Samples     [][]*sample
}

// values returns metric m of contestant i over the repetitions, NaN where
// a repetition has none.
func (r *results) values(i int, m metric) []float64 {
	vs := make([]float64, len(r.Samples))
	for rep, row := range r.Samples {
		vs[rep] = row[i].Values[m]
	}
	return vs
}

// failedAll reports whether contestant i failed in every repetition.
func (r *results) failedAll(i int) bool {
	for _, row := range r.Samples {
		if row[i].Err == nil {
			return false
		}
	}
	return len(r.Samples) > 0
}

// index returns the position of the contestant with key, or -1.
func (r *results) index(key string) int {
	for i, c := range r.Contestants {
		if c.Key() == key {
			return i
		}
	}
	return -1
}

// report is everything the Markdown report shows.
type report struct {
	Machine machine
	Command string
	Params  params
	Results *results
}

// formatNumber prints v with d decimals.
func formatNumber(v float64, d int) string {
	return strconv.FormatFloat(v, 'f', d, 64)
}

// formatSummary prints "median (min–max)", or the median alone for one
// value, with a note when fewer than reps repetitions gave a value.
func formatSummary(s summary, d int, reps int, suffix string) string {
	if s.N == 0 {
		return "–"
	}
	out := formatNumber(s.Median, d) + suffix
	if s.N > 1 {
		out += fmt.Sprintf(" (%s–%s)", formatNumber(s.Min, d), formatNumber(s.Max, d))
	}
	if s.N < reps {
		out += fmt.Sprintf(" [%d of %d]", s.N, reps)
	}
	return out
}

// write writes the report as Markdown.
func (rp *report) write(w io.Writer) {
	r := rp.Results
	reps := len(r.Samples)
	m := rp.Machine
	fmt.Fprintf(w, "# l2wg benchmark\n\n")
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| date | %s |\n", m.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "| machine | %d × %s, Linux %s |\n", m.CPUs, m.CPUModel, m.Kernel)
	fmt.Fprintf(w, "| Go | %s |\n", m.GoVersion)
	fmt.Fprintf(w, "| wireguard-go | %s %s (built from the module cache) |\n", wireguardModule, m.WireguardGo)
	fmt.Fprintf(w, "| l2wg | %s |\n", m.L2WG)
	fmt.Fprintf(w, "| tools | %s |\n", strings.Join(m.Tools, "; "))
	fmt.Fprintf(w, "| command | `%s` |\n", rp.Command)
	fmt.Fprintf(w, "| runs | %s, interleaved (%s, then again); %d s per iperf3 test |\n\n",
		plural(reps, "repetition"), rp.order(), rp.Params.Seconds)

	labels := metricLabels(rp.Params.UDPRate)
	fmt.Fprintf(w, "Median (min–max) over the repetitions.\n\n| metric |")
	for _, c := range r.Contestants {
		fmt.Fprintf(w, " %s |", c.Name())
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", len(r.Contestants)))
	for mi := range numMetrics {
		info := metricInfos[mi]
		fmt.Fprintf(w, "| %s |", labels[mi])
		for i := range r.Contestants {
			cell := formatSummary(summarize(r.values(i, mi)), info.Decimals, reps, "")
			if r.failedAll(i) {
				cell = "failed"
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
	rp.writeRatios(w, labels)
	rp.writeFailures(w)
	rp.writeNotes(w)
}

// order lists the contestants in the order each repetition runs them.
func (rp *report) order() string {
	names := make([]string, len(rp.Results.Contestants))
	for i, c := range rp.Results.Contestants {
		names[i] = c.Name()
	}
	return strings.Join(names, ", ")
}

// writeRatios writes l2wg / baseline, computed repetition by repetition.
func (rp *report) writeRatios(w io.Writer, labels [numMetrics]string) {
	r := rp.Results
	li := r.index("l2wg")
	if li < 0 || len(r.Contestants) < 2 {
		return
	}
	fmt.Fprintf(w, "\n### l2wg / baseline\n\nRatio of repetition i of l2wg to repetition i of the baseline; median (min–max) of those ratios. ")
	fmt.Fprintf(w, "Above 1 is better for throughput, below 1 is better for round trip, CPU and memory.\n\n| metric |")
	for i, c := range r.Contestants {
		if i != li {
			fmt.Fprintf(w, " l2wg / %s |", c.Name())
		}
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", len(r.Contestants)-1))
	for mi := range numMetrics {
		if metricInfos[mi].NoRatio {
			continue
		}
		fmt.Fprintf(w, "| %s |", labels[mi])
		for i := range r.Contestants {
			if i == li {
				continue
			}
			s := summarize(pairRatios(r.values(li, mi), r.values(i, mi)))
			fmt.Fprintf(w, " %s |", formatSummary(s, 2, len(r.Samples), "×"))
		}
		fmt.Fprintln(w)
	}
}

// writeFailures lists contestants that failed and tests that did.
func (rp *report) writeFailures(w io.Writer) {
	var lines []string
	for rep, row := range rp.Results.Samples {
		for i, s := range row {
			name := rp.Results.Contestants[i].Name()
			if s.Err != nil {
				lines = append(lines, fmt.Sprintf("- repetition %d, %s: failed: %v", rep+1, name, s.Err))
			}
			for _, p := range s.Problems {
				lines = append(lines, fmt.Sprintf("- repetition %d, %s: %s", rep+1, name, p))
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### Failures\n\n%s\n", strings.Join(lines, "\n"))
}

// writeNotes says what each number is.
func (rp *report) writeNotes(w io.Writer) {
	p := rp.Params
	loadPings := max(50, (p.Seconds-2)*int(1e3/pingInterval.Milliseconds()))
	fmt.Fprintf(w, `
### How it was measured

- Every repetition of every contestant builds a fresh lab: two hypervisor namespaces joined by an
  underlay veth (MTU 1500), in each a Linux bridge br0 (no address, STP off) with one VM namespace
  on a veth (MTU 1500). Before measuring, a VM-to-VM %[1]s must pass, else the contestant fails.
- wireguard-go L3 runs hypervisor to hypervisor over its tunnel addresses (TUN MTU %[2]d; the check
  ping and the UDP datagrams are %[3]d bytes so they fit it): the transport's own ceiling. All others
  run VM to VM with 1500-byte frames (UDP datagrams of 1472 bytes).
- wireguard-go + VXLAN: kernel VXLAN (id %[4]s, port %[5]s) on the tunnel addresses in each br0,
  wireguard-go TUN MTU %[6]d so that a whole VXLAN packet fits (the underlay fragments wireguard-go's
  datagrams). tinc 1.0: switch mode, PMTUDiscovery = no, default cipher and digest. l2wg: the README's
  configuration, with the shortest 802.1D spanning-tree timers (hello 1 s, forward delay 4 s,
  max age 6 s) so that under a spanning tree (-protocol) its ports forward 8 s after start instead
  of 30 s; the default shortest-path mesh does not use them.
- TCP and UDP: iperf3 -J, client in one VM (or hypervisor), receiver's goodput; UDP with -b %[7]s
  (0: as fast as the sender can), full-size datagrams, then %[11]d- and %[12]d-byte datagrams whose
  rate is the receiver's goodput in packets per second.
- First frame: from the start of the VPN's first daemon process (its start time in /proc/<pid>/stat,
  10 ms resolution; keys and configs made before do not count) to the first reply to the check
  ping, polled every 100 ms.
- Round trip: idle %[9]d requests every %[15]v before the TCP tests, under load %[10]d requests
  every %[8]v from 1 s into the TCP 4-stream test; mean and percentiles of the replies.
- CPU: utime + stime from /proc/<pid>/stat of the VPN processes on both hypervisors across the TCP
  1-stream test, divided by the GB (10^9 bytes) the receiver got. For wireguard-go + VXLAN this is
  wireguard-go only: the kernel's VXLAN and bridge work belongs to no process and is not counted.
- Peak RSS: VmHWM from /proc/<pid>/status of the larger of the two VPN processes, read after the
  TCP tests and again after the UDP tests (the end of the repetition). l2wg only: one more l2wg in a
  namespace of its own, with %[13]d peers at endpoints where nothing answers, idle for %[14]d s.
`, fmt.Sprintf("ping -M do -s %d", vmPath.DFSize), wgMTU, wgMTU-28, vxlanID, vxlanPort, vxlanWGMTU,
		p.UDPRate, pingInterval, p.IdlePings, loadPings, smallUDP, mediumUDP, idlePeers, p.IdleSeconds, p.IdleInterval)
}

// plural returns "1 repetition", "3 repetitions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
