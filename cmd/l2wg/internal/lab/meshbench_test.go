package lab

import (
	"context"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/testbin"
)

// The shortest-path mesh's start, restart and failover figures for make
// bench (issue 13: "Bench: both figures, median and max"; failover "bench
// reports median and max (target ≤ 0.5 s)"). The bounds are
// TestMeshStart's and TestMeshFailover's; these only measure, with the
// same lab measurements (meshmeasure.go).

var (
	meshStarts = flag.Int("mesh.starts", 3, "BenchmarkMeshStart: cold starts of five-sites (each followed by a restart of every site)")
	meshLong   = flag.Bool("mesh.five", true, "BenchmarkMeshFailover: five-sites besides the triangle")
)

// buildBench builds a shipped topology for a benchmark with its sites on
// the shortest-path mesh.
func buildBench(b *testing.B, name, topology string, hold bool, mod func(*Topology)) *Lab {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root for network namespaces (make bench runs as root)")
	}
	top, err := Load(topology)
	if err != nil {
		b.Fatal(err)
	}
	top.Mesh.Protocol = ProtocolShortestPath
	if mod != nil {
		mod(top)
	}
	l, err := Build(context.Background(), top, Options{L2WG: testbin.L2WG(b), StateRoot: b.TempDir(), Name: name, Hold: hold})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := l.Down(); err != nil {
			b.Error(err)
		}
	})
	return l
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// reportSpread reports the median and the max of ds (in ms) under unit
// names prefix-median and prefix-max.
func reportSpread(b *testing.B, prefix string, ds []time.Duration) {
	b.Helper()
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(ms(median(ds)), "ms-"+prefix+"-median")
	b.ReportMetric(ms(ds[len(ds)-1]), "ms-"+prefix+"-max")
}

// BenchmarkMeshStart starts every site of five-sites at once
// (-mesh.starts times, a new lab each) and measures, per peering, the
// first VM frame after the pair's first WireGuard handshake
// (MeasureFirstFrames); then restarts each site in turn (SIGTERM,
// persistent TAP, 1 s down) and measures the time from its start to the
// first reply of a 10 ms stream from a VM of a peer site (MeasureRestart).
// Reports median and max of both, in ms, with the pairs measured and those
// that could not be (their first handshake replaced before it was read).
func BenchmarkMeshStart(b *testing.B) {
	ctx := context.Background()
	var first, restart []time.Duration
	unmeasured := 0
	for run := range *meshStarts {
		l := buildBench(b, "mbst"+string(rune('a'+run)), "five-sites", true, func(t *Topology) { t.L2WG.PersistentTAP = true })
		ffs, err := l.MeasureFirstFrames(ctx, 60*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range ffs {
			if f.Err != "" {
				b.Logf("start %d: %s-%s: %s", run+1, f.A, f.B, f.Err)
				unmeasured++
				continue
			}
			b.Logf("start %d: %s-%s: first frame %v after the handshake", run+1, f.A, f.B, f.After.Round(time.Millisecond))
			first = append(first, f.After)
		}
		if c := l.Converge(ctx, 90*time.Second); !c.OK {
			b.Fatalf("start %d: not converged: %s", run+1, c.Waiting)
		}
		for _, sp := range restartPairs(l) {
			site, peer := sp[0], sp[1]
			d, err := l.MeasureRestart(ctx, site, peer, 30*time.Second)
			if err != nil {
				b.Fatalf("restart %s: %v", site, err)
			}
			b.Logf("start %d: restart of %s: %s reaches it %v after its start", run+1, site, peer, d.Round(time.Millisecond))
			restart = append(restart, d)
			if c := l.Converge(ctx, 90*time.Second); !c.OK {
				b.Fatalf("after the restart of %s: not converged: %s", site, c.Waiting)
			}
		}
	}
	b.ReportMetric(0, "ns/op")
	reportSpread(b, "first", first)
	reportSpread(b, "restart", restart)
	b.ReportMetric(float64(len(first)), "pairs")
	b.ReportMetric(float64(unmeasured), "unmeasured")
	b.ReportMetric(float64(len(restart)), "restarts")
}

// restartPairs returns, for every site with a VM, the site and the first
// of its peers with a VM.
func restartPairs(l *Lab) [][2]string {
	var out [][2]string
	for _, n := range l.Plan.Sites() {
		if l.firstVM(n.Name) == "" {
			continue
		}
		for _, pe := range l.Plan.Peerings {
			peer := ""
			switch n.Name {
			case pe.A.Name:
				peer = pe.B.Name
			case pe.B.Name:
				peer = pe.A.Name
			}
			if peer != "" && l.firstVM(peer) != "" {
				out = append(out, [2]string{n.Name, peer})
				break
			}
		}
	}
	return out
}

// BenchmarkMeshFailover runs, on the triangle and (with -mesh.five, the
// default) five-sites, 10 ms ping streams between every two VMs at
// different sites, and kills -9 every site in turn and cuts every peering
// in turn (MeasureFailure, a 3 s window each, then the restart or heal).
// Per event the figure is the longest gap of the pairs that kept a path,
// measured from the failure; reported as median and max over the kills,
// over the cuts, and over the repairs (restart or heal), in ms; beside it
// the longest loss (LongestLoss: the same outage without the round trip
// of the path traffic moved to) over the kills and over the cuts. Target
// ≤ 500 ms.
func BenchmarkMeshFailover(b *testing.B) {
	tops := []string{"triangle"}
	if *meshLong {
		tops = append(tops, "five-sites")
	}
	for _, top := range tops {
		b.Run(top, func(b *testing.B) {
			ctx := context.Background()
			l := buildBench(b, "mbfo"+top[:3], top, false, nil)
			if c := l.Converge(ctx, 90*time.Second); !c.OK {
				b.Fatalf("not converged: %s", c.Waiting)
			}
			var kills, cuts, repairs, killLoss, cutLoss []time.Duration
			for _, ev := range l.Failures() {
				f, err := l.MeasureFailure(ctx, ev, 3*time.Second, true)
				if err != nil {
					b.Fatalf("%s: %v", ev, err)
				}
				pair, gap := Max(f.Gaps)
				rpair, rgap := Max(f.RepairGaps)
				lpair, loss := Max(f.Losses)
				b.Logf("%-16s longest gap %v (%s), loss %v (%s); after %s %v (%s)", ev, gap.Round(time.Millisecond), pair,
					loss.Round(time.Millisecond), lpair, f.Repair, rgap.Round(time.Millisecond), rpair)
				if len(f.Gaps) == 0 {
					continue // no pair kept a path
				}
				if strings.HasPrefix(ev, "kill ") {
					kills, killLoss = append(kills, gap), append(killLoss, loss)
				} else {
					cuts, cutLoss = append(cuts, gap), append(cutLoss, loss)
				}
				repairs = append(repairs, rgap)
			}
			b.ReportMetric(0, "ns/op")
			reportSpread(b, "kill", kills)
			reportSpread(b, "cut", cuts)
			reportSpread(b, "repair", repairs)
			reportSpread(b, "kill-loss", killLoss)
			reportSpread(b, "cut-loss", cutLoss)
		})
	}
}
