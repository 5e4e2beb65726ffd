package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPathCostsFromLatency (issue 8): in the five-sites topology, the round
// trip between the VMs at epsilon (US East) and vorke (Ottawa) with the
// default cost = "auto" on every peer is no longer than with every peer's
// cost fixed at 100 (equal costs, the classic setup). The shipped file's
// fixed costs are replaced: removed for the auto run, 100 for the fixed run.
// Both trees and both round trips are logged.
//
// In five-sites both runs give the same tree (rho the root, every site's
// root port its peering with rho; bob-epsilon and epsilon-vorke blocked), so
// epsilon reaches vorke through Paris either way: the auto costs of
// rho-vorke (~1000) stay below rho-epsilon plus epsilon-vorke (~920 + ~320),
// as the underlay has no detour. TestPathCostsFromLatencyDetour has one.
func TestPathCostsFromLatency(t *testing.T) {
	needRoot(t, "nft")
	text, ok := ShippedText("five-sites")
	if !ok {
		t.Fatal("no shipped five-sites")
	}
	compareAutoFixed(t, text, 6, false)
}

// TestPathCostsFromLatencyDetour: as TestPathCostsFromLatency, in
// testdata/detour.toml, where vorke's tunnel to rho runs over a slow direct
// link. Equal costs hang vorke off rho (one hop), so epsilon-vorke goes
// through Paris; auto costs hang vorke off epsilon, and the round trip must
// be strictly (at least a fifth) shorter.
func TestPathCostsFromLatencyDetour(t *testing.T) {
	needRoot(t)
	text, err := os.ReadFile(filepath.Join("testdata", "detour.toml"))
	if err != nil {
		t.Fatal(err)
	}
	compareAutoFixed(t, text, 5, true)
}

// compareAutoFixed builds the topology text twice, with every peering's cost
// line removed (auto) and set to 100 (fixed), and compares the
// epsilon-vorke round trips: auto must be no longer (within noise), and
// with strict at least a fifth shorter.
func compareAutoFixed(t *testing.T, text []byte, peerings int, strict bool) {
	costLine := regexp.MustCompile(`(?m)^cost = \d+\s*$`)
	if n := len(costLine.FindAll(text, -1)); n != peerings {
		t.Fatalf("the topology has %d cost lines, want %d (one per peering)", n, peerings)
	}
	runs := []struct {
		name string
		cost string // replaces every peering's cost line
	}{
		{"auto", "# cost: auto"},
		{"fixed", "cost = 100"},
	}
	rtt := make(map[string]float64)
	for _, r := range runs {
		if !t.Run(r.name, func(t *testing.T) {
			top, err := Parse(r.name+".toml", costLine.ReplaceAll(text, []byte(r.cost)))
			if err != nil {
				t.Fatal(err)
			}
			top.Mesh.Protocol = ProtocolRSTP // the tree's path costs are under test
			rtt[r.name] = epsilonVorkeRTT(t, top, r.name == "auto")
		}) {
			return
		}
	}
	auto, fixed := rtt["auto"], rtt["fixed"]
	switch {
	case auto < fixed*0.8:
		t.Logf("epsilon-vorke: auto costs %.1f ms, equal costs %.1f ms: auto is strictly shorter", auto, fixed)
	case strict:
		t.Errorf("epsilon-vorke: auto costs %.1f ms, equal costs %.1f ms: auto is not a fifth shorter", auto, fixed)
	case auto <= fixed*1.05+1:
		t.Logf("epsilon-vorke: auto costs %.1f ms, equal costs %.1f ms: the same path (auto <= fixed within 5 %% + 1 ms of noise), not strictly shorter", auto, fixed)
	default:
		t.Errorf("epsilon-vorke: auto costs %.1f ms, equal costs %.1f ms: auto is longer", auto, fixed)
	}
}

// epsilonVorkeRTT builds the lab, waits for the tree (with auto costs: for
// every peer port's cost to follow its round trip, and the tree to settle on
// them), logs the tree and returns the median round trip from vm-epsilon to
// vm-vorke in ms.
func epsilonVorkeRTT(t *testing.T, top *Topology, auto bool) float64 {
	tl := newTestLab(t, "lat-"+t.Name()[strings.LastIndex(t.Name(), "/")+1:])
	ctx := context.Background()
	l, err := Build(ctx, top, Options{L2WG: tl.bin, StateRoot: tl.root, Name: tl.name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
	})
	if !l.STP || !l.Show {
		t.Fatalf("this l2wg has no spanning tree or no show (STP %v, show %v)", l.STP, l.Show)
	}
	start := time.Now()
	if c := l.Converge(ctx, 60*time.Second); !c.OK {
		t.Fatalf("not converged after %s: %s", c.Took, c.Waiting)
	}
	t.Logf("converged after %s", time.Since(start).Round(100*time.Millisecond))
	if auto {
		costs, err := l.waitAutoCosts(ctx, 40*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("auto costs settled after %s: %s", time.Since(start).Round(100*time.Millisecond), costs)
		if c := l.Converge(ctx, 60*time.Second); !c.OK {
			t.Fatalf("not converged on the auto costs after %s: %s", c.Took, c.Waiting)
		}
	} else {
		costs, _ := l.peerCosts(ctx)
		t.Logf("costs: %s", costs)
	}
	c := l.CheckSpanningTree(ctx)
	t.Logf("tree: %s", c.Summary)
	for _, d := range c.Details {
		t.Logf("  %s", d)
	}
	if c.Status != statusOK {
		t.Fatalf("spanning tree: %s", c.Status)
	}

	vorke := l.Plan.VM("vm-vorke").Addr.Addr()
	if r := l.ping(ctx, "vm-epsilon", vorke, time.Now().Add(20*time.Second)); r.received == 0 {
		t.Fatalf("vm-epsilon cannot ping vm-vorke: %s", r.err)
	}
	out, _ := l.NS.Exec("vm-epsilon", "ping", "-n", "-c", "20", "-i", "0.2", "-W", "2", vorke.String())
	var times []float64
	for _, m := range regexp.MustCompile(`time=([\d.]+) ms`).FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		times = append(times, v)
	}
	if len(times) < 10 {
		t.Fatalf("%d of 20 pings answered:\n%s", len(times), out)
	}
	sort.Float64s(times)
	med := times[len(times)/2]
	if len(times)%2 == 0 {
		med = (times[len(times)/2-1] + times[len(times)/2]) / 2
	}
	t.Logf("vm-epsilon -> vm-vorke: %d/20 answered, rtt min %.1f median %.1f max %.1f ms", len(times), times[0], med, times[len(times)-1])
	return med
}

// peerCosts returns every site's peer ports' path costs, "a>b 180", sorted,
// and whether every one of them differs from the default 100.
func (l *Lab) peerCosts(ctx context.Context) (string, bool) {
	all, err := l.statuses(ctx, l.runningSites())
	if err != nil {
		return err.Error(), false
	}
	var costs []string
	moved := true
	for _, pe := range l.Plan.Peerings {
		for _, ends := range [][2]string{{pe.A.Name, pe.B.Name}, {pe.B.Name, pe.A.Name}} {
			st := all[ends[0]]
			if st == nil || st.STP == nil {
				return ends[0] + " reports no spanning tree", false
			}
			cost, found := uint32(0), false
			for _, p := range st.STP.Ports {
				if p.Name == ends[1] {
					cost, found = p.PathCost, true
				}
			}
			if !found {
				return fmt.Sprintf("%s has no port %s", ends[0], ends[1]), false
			}
			moved = moved && cost != 100
			costs = append(costs, fmt.Sprintf("%s>%s %d", ends[0], ends[1], cost))
		}
	}
	sort.Strings(costs)
	return strings.Join(costs, ", "), moved
}

// waitAutoCosts waits until every peer port's cost has moved off the
// default and then stayed the same for longer than l2wg's cost period (5 s).
func (l *Lab) waitAutoCosts(ctx context.Context, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var last string
	var since time.Time
	for {
		costs, moved := l.peerCosts(ctx)
		switch {
		case !moved:
			since = time.Time{}
		case costs != last:
			since = time.Now()
		case time.Since(since) > 6*time.Second:
			return costs, nil
		}
		last = costs
		if time.Now().After(deadline) {
			return costs, fmt.Errorf("auto costs not settled after %s: %s", timeout, costs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
