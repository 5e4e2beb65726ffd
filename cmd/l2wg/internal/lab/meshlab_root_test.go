package lab

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 13's "How it is shown", in namespaces. The TestMesh* tests assert
// the mesh's bounds with protocol "shortest-path" and skip while l2wg has
// no [mesh] protocol key (config.Keys): they run the day the daemon has it.
// L2WG_MESH_BASELINE=rstp (or stp) runs them now with that protocol: they
// then log their numbers and check only that the machinery works (streams
// flowed, the network recovered), not the mesh's bounds.
// L2WG_LAB_LONG=1 adds the long variants (failover on five-sites).

// meshProtocol returns the protocol to test and whether to assert the
// mesh's bounds.
func meshProtocol(t *testing.T) (string, bool) {
	t.Helper()
	if p := os.Getenv("L2WG_MESH_BASELINE"); p != "" {
		return p, false
	}
	if !MeshProtocolKnown() {
		t.Skip("this l2wg has no [mesh] protocol key (config.Keys): the mesh's bounds cannot be tested yet; L2WG_MESH_BASELINE=rstp runs the measurements with the spanning tree")
	}
	return ProtocolShortestPath, true
}

// buildWith builds a shipped topology with its sites running protocol.
func buildWith(t *testing.T, short, topology, protocol string, hold bool, mod func(*Topology)) *Lab {
	t.Helper()
	needRoot(t, "nft")
	top, err := Load(topology)
	if err != nil {
		t.Fatal(err)
	}
	top.Mesh.Protocol = protocol
	if lv := os.Getenv("L2WG_LAB_LOG_LEVEL"); lv != "" {
		top.L2WG.LogLevel = lv
	}
	if mod != nil {
		mod(top)
	}
	tl := newTestLab(t, short)
	l, err := Build(context.Background(), top, Options{L2WG: tl.bin, StateRoot: tl.root, Name: tl.name, Hold: hold})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() { keepLogs(t, l) }) // before Down, which removes them
	t.Logf("%s: sites run %s", topology, l.Plan.MeshProtocol())
	return l
}

// keepLogs copies the sites' l2wg logs of a failed test out of the test's
// temporary directory (L2WG_LAB_LOG_LEVEL=debug makes them say more), and
// names where.
func keepLogs(t *testing.T, l *Lab) {
	t.Helper()
	if !t.Failed() {
		return
	}
	dir, err := os.MkdirTemp("", "l2wg-failed-"+l.Name+"-")
	if err != nil {
		t.Logf("keeping the logs: %v", err)
		return
	}
	for _, site := range l.Plan.Sites() {
		data, err := os.ReadFile(l.LogPath(site.Name))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, site.Name+".log"), data, 0o644)
		}
		if err != nil {
			t.Logf("keeping %s's log: %v", site.Name, err)
		}
	}
	t.Logf("the sites' l2wg logs: %s", dir)
}

func converge(t *testing.T, l *Lab) {
	t.Helper()
	if c := l.Converge(context.Background(), 90*time.Second); !c.OK {
		t.Fatalf("not converged after %s: %s", c.Took, c.Waiting)
	}
}

func logCheck(t *testing.T, c Check) {
	t.Helper()
	t.Logf("%s: %s: %s", c.Name, c.Status, c.Summary)
	for _, d := range c.Details {
		t.Logf("  %s", d)
	}
}

// TestShortestPathsDetourUnderRSTP proves the pair matrix can fail: on
// five-sites the spanning tree (root rho) blocks bob-epsilon and
// epsilon-vorke, so vm-epsilon reaches vm-vorke through Paris, far over
// 1.1 x their direct peering's underlay round trip + 2 ms; pairs on the
// tree pass. (l2wg lab run five-sites -protocol rstp shows the same.)
func TestShortestPathsDetourUnderRSTP(t *testing.T) {
	t.Parallel()
	l := buildWith(t, "spdet", "five-sites", ProtocolRSTP, false, nil)
	converge(t, l)
	if c := l.CheckSpanningTree(context.Background()); c.Status != statusOK || !strings.Contains(c.Summary, "blocked bob-epsilon epsilon-vorke") {
		t.Errorf("spanning tree: %s: %s; want bob-epsilon and epsilon-vorke blocked", c.Status, c.Summary)
	}
	c := l.CheckShortestPaths(context.Background(), true)
	logCheck(t, c)
	if c.Status != statusFail {
		t.Fatalf("shortest paths under rstp: %s; want a failure (the tree's detours)", c.Status)
	}
	pairs, _ := l.PairMatrix(context.Background())
	for _, p := range pairs {
		key := p.A + "-" + p.B
		switch key {
		case "vm-epsilon-vm-vorke":
			if withinBound(p.Measured, p.Best) || strings.Join(p.Path, "-") != "epsilon-vorke" {
				t.Errorf("%s: %.1f ms, best %.1f over %v: want a detour over the direct epsilon-vorke", key, p.Measured, p.Best, p.Path)
			}
		case "vm-rho-vm-bob":
			if !withinBound(p.Measured, p.Best) {
				t.Errorf("%s: %.1f ms, best %.1f: a pair on the tree should be within the bound", key, p.Measured, p.Best)
			}
		}
	}
}

// TestMeshShortestPaths: every VM pair within the bound on
// five-sites-full (five-sites: TestRunFiveSites, whose lab run judges it).
func TestMeshShortestPaths(t *testing.T) {
	proto, bounds := meshProtocol(t)
	for _, top := range []string{"five-sites-full"} {
		t.Run(top, func(t *testing.T) {
			l := buildWith(t, "msp"+top[len(top)-4:], top, proto, false, nil)
			converge(t, l)
			c := l.CheckShortestPaths(context.Background(), bounds)
			logCheck(t, c)
			if bounds && c.Status != statusOK {
				t.Errorf("shortest paths: %s", c.Summary)
			}
		})
	}
}

// TestMeshStart: all sites started at once, the first VM frame of every
// peering within 1 s of its first WireGuard handshake (the earlier of the
// two ends' handshake times as wireguard-go reports them); one site
// restarted with a persistent TAP: traffic again within 2 s of its start.
// Runs measure 0.1-0.4 s and 0.4-0.6 s. A pair whose first handshake
// was replaced by a second before it could be read (l2wg show reports the
// latest; at start that is a pair whose two initiations crossed, and whose
// VMs meanwhile talk through another site) cannot be measured: it is
// logged, and at least half the pairs must be measured.
func TestMeshStart(t *testing.T) {
	proto, bounds := meshProtocol(t)
	l := buildWith(t, "mstart", "five-sites", proto, true, func(top *Topology) { top.L2WG.PersistentTAP = true })
	ctx := context.Background()
	ffs, err := l.MeasureFirstFrames(ctx, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	measured := 0
	for _, f := range ffs {
		t.Logf("first frame %s-%s: %v after the handshake %s", f.A, f.B, f.After.Round(time.Millisecond), f.Err)
		switch {
		case strings.Contains(f.Err, "replaced the first"):
			// not measurable; logged above
		case f.Err != "":
			t.Errorf("%s-%s: %s", f.A, f.B, f.Err)
		case bounds && f.After > time.Second:
			measured++
			t.Errorf("%s-%s: first frame %v after the handshake, want within 1s", f.A, f.B, f.After)
		default:
			measured++
		}
	}
	if 2*measured < len(ffs) {
		t.Errorf("only %d of %d pairs measured", measured, len(ffs))
	}
	converge(t, l)
	d, err := l.MeasureRestart(ctx, "epsilon", "vorke", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restart of epsilon (persistent TAP): vm-vorke reaches vm-epsilon %v after the start", d.Round(time.Millisecond))
	if bounds && d > 2*time.Second {
		t.Errorf("restart: traffic again %v after the start, want within 2s", d)
	}
}

// TestMeshFailover: 10 ms streams between every two VMs; kill -9 every
// site in turn and cut every peering in turn: for the pairs that keep a
// path the longest gap is under 1 s, and under 1 s again after the restart
// or heal; once converged after it, every pair is on a shortest path again
// (the pair matrix). In make test: the triangle, and on five-sites the two
// failures that move paths the most (kill -9 of the hub rho: bob-vorke
// goes over epsilon; cut epsilon-vorke: it goes over rho), with 2 s
// windows; L2WG_LAB_LONG=1 runs every failure of five-sites.
func TestMeshFailover(t *testing.T) {
	proto, bounds := meshProtocol(t)
	long := os.Getenv("L2WG_LAB_LONG") != ""
	for _, top := range []string{"triangle", "five-sites"} {
		t.Run(top, func(t *testing.T) {
			window := 3 * time.Second
			if top == "five-sites" && !long {
				window = 2 * time.Second
			}
			if !bounds {
				window = 8 * time.Second // the spanning tree's outages are longer: see them end
			}
			l := buildWith(t, "mfo"+top[:3], top, proto, false, nil)
			converge(t, l)
			events := l.Failures()
			if top == "five-sites" && !long {
				events = []string{"kill rho", "cut epsilon vorke"}
			}
			for _, ev := range events {
				f, err := l.MeasureFailure(context.Background(), ev, window, bounds)
				if err != nil {
					t.Fatalf("%s: %v", ev, err)
				}
				if f.Paths.Status == statusFail {
					logCheck(t, f.Paths)
					t.Errorf("after %s: %s", f.Repair, f.Paths.Summary)
				} else {
					t.Logf("after %s: %s", f.Repair, f.Paths.Summary)
				}
				pair, gap := Max(f.Gaps)
				rpair, rgap := Max(f.RepairGaps)
				lpair, loss := Max(f.Losses)
				t.Logf("%-12s longest gap %v (%s), loss %v (%s); after %s %v (%s); no path: %v", ev, gap.Round(time.Millisecond), pair,
					loss.Round(time.Millisecond), lpair, f.Repair, rgap.Round(time.Millisecond), rpair, f.Cut)
				if bounds && (gap >= time.Second || rgap >= time.Second) {
					t.Errorf("%s: longest gap %v (%s), after %s %v (%s); want under 1s", ev, gap, pair, f.Repair, rgap, rpair)
				}
			}
		})
	}
}

// TestMeshChurn: seeded random cuts, heals, kills and restarts for
// L2WG_CHURN_DURATION (default 25s; the 60 s with
// L2WG_CHURN_DURATION=60s), L2WG_CHURN_SEED to replay: no duplicate reply,
// no frame with an exhausted hop limit arrived anywhere (so none reached a
// TAP: bridge's TestMeshHopLimitZeroNeverDelivered shows that the counter
// moves, and nothing is delivered, when one does), every pair reachable at
// the end.
func TestMeshChurn(t *testing.T) {
	proto, bounds := meshProtocol(t)
	d := 25 * time.Second
	if s := os.Getenv("L2WG_CHURN_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("L2WG_CHURN_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("churn seed %d (replay: L2WG_CHURN_SEED=%d), %s", seed, seed, d)
	l := buildWith(t, "mchurn", "five-sites-full", proto, false, nil)
	converge(t, l)
	res, err := l.Churn(context.Background(), seed, d, t.Logf)
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	t.Logf("seed %d: %d actions, %d unicast replies, %d unicast duplicates, %d broadcast duplicates", seed, len(res.Actions), res.Replies, res.UnicastDups, res.BroadcastDups)
	for _, c := range res.End {
		logCheck(t, c)
		if c.Status != statusOK {
			t.Errorf("seed %d: at the end: %s: %s", seed, c.Name, c.Summary)
		}
	}
	t.Logf("seed %d: hop limit: %d frames arrived exhausted, %d ran out on the way (transient loops ended)", seed, res.HopLimitZero, res.HopLimit)
	if res.HopLimitZero != 0 {
		t.Errorf("seed %d: %d frames arrived with an exhausted hop limit, want none", seed, res.HopLimitZero)
	}
	if proto == ProtocolShortestPath && len(res.Unsampled) > 0 {
		t.Errorf("seed %d: hop-limit counters not read for %v", seed, res.Unsampled)
	}
	if bounds && res.UnicastDups+res.BroadcastDups > 0 {
		t.Errorf("seed %d: %d unicast and %d broadcast duplicate replies, want none", seed, res.UnicastDups, res.BroadcastDups)
	}
}

// TestMeshHAPair: exactly one of a1 and a2 forwards; kill -9 it: the gap
// into A's LAN under 1 s; restart it: no duplicate, gap under 1 s; whether
// it takes over again is logged.
func TestMeshHAPair(t *testing.T) {
	proto, bounds := meshProtocol(t)
	l := buildWith(t, "mha", "ha-pair", proto, false, nil)
	converge(t, l)
	c := l.CheckBroadcast(context.Background(), 10*time.Second)
	logCheck(t, c)
	if c.Status != statusOK {
		t.Errorf("broadcast: %s", c.Summary)
	}
	window, restart := 3*time.Second, 5*time.Second
	if !bounds {
		window, restart = 12*time.Second, 30*time.Second
	}
	res, err := l.MeasureHA(context.Background(), []string{"a1", "a2"}, "vm-b", window, restart)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("forwarder %s; kill -9: longest gap %v; restart: longest gap %v; %d duplicates; forwarder after the restart %s (TAP frames %v)",
		res.Forwarder, res.KillGap.Round(time.Millisecond), res.RestartGap.Round(time.Millisecond), res.Dups, res.After, res.Counts)
	for _, line := range res.Log {
		t.Logf("  %s", line)
	}
	if bounds && (res.KillGap >= time.Second || res.RestartGap >= time.Second || res.Dups > 0) {
		t.Errorf("HA pair: kill gap %v, restart gap %v, %d duplicates; want gaps under 1s and no duplicate", res.KillGap, res.RestartGap, res.Dups)
	}
}

// TestRunHAPair and TestRunTwelveSites run the shipped topologies with lab
// run: the shortest-path mesh (twelve-sites' shortest-path check judged),
// ha-pair's LAN with one appointed forwarder.
func TestRunHAPair(t *testing.T) {
	t.Parallel()
	rep, _ := runShipped(t, "ha-pair", "ha")
	check(t, rep, "initial", "broadcast from vm-b")
}

func TestRunTwelveSites(t *testing.T) {
	t.Parallel()
	rep, _ := runShipped(t, "twelve-sites", "12s")
	if c := check(t, rep, "initial", "ping matrix"); !strings.Contains(c.Summary, "132/132 pairs answered") {
		t.Errorf("ping matrix: %s; want 132/132", c.Summary)
	}
}
