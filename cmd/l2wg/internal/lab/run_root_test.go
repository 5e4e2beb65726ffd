package lab

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runShipped runs l2wg lab run on a shipped topology and returns its
// report, its text and its exit code. The binary is the one just built,
// which has a spanning tree: a run that skips (as it would with an l2wg
// without one) fails the test.
func runShipped(t *testing.T, topology, short string, flags ...string) (*Report, string) {
	t.Helper()
	needRoot(t, "nft")
	tl := newTestLab(t, short)
	before := hostLinks(t)
	jsonPath := filepath.Join(t.TempDir(), "report.json")
	args := append([]string{"lab", "run", topology, "-n", tl.name, "-state-dir", tl.root, "-json", jsonPath}, flags...)
	out, code := tl.l2wg(3*time.Minute, args...)
	t.Logf("l2wg lab run %s:\n%s", topology, out)
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatalf("exit %d, no JSON report: %v", code, err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Skipped != "" {
		t.Fatalf("lab run %s skipped with the l2wg just built: %s", topology, rep.Skipped)
	}
	if !rep.Passed || code != 0 || rep.Error != "" {
		t.Fatalf("lab run %s: passed %v, exit %d, error %q; want a pass with exit 0", topology, rep.Passed, code, rep.Error)
	}
	if !strings.Contains(out, "\nPASS: ") {
		t.Errorf("the text report does not end in PASS")
	}
	tl.assertGone(before) // lab run tears down by itself
	return &rep, out
}

// check returns the check called name (a prefix) of stage, failing the
// test if there is none or it did not pass.
func check(t *testing.T, rep *Report, stage, name string) Check {
	t.Helper()
	c := find(t, rep, stage, name)
	if c.Name != "" && c.Status != statusOK {
		t.Errorf("%s: %s: %s: %s", stage, c.Name, c.Status, c.Summary)
	}
	return c
}

// find returns the check called name (a prefix) of stage, failing the test
// if there is none.
func find(t *testing.T, rep *Report, stage, name string) Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Stage == stage && strings.HasPrefix(c.Name, name) {
			return c
		}
	}
	t.Errorf("no check %q at stage %q", name, stage)
	return Check{}
}

func TestRunTwoHypervisors(t *testing.T) {
	t.Parallel()
	rep, _ := runShipped(t, "two-hypervisors", "2hv")
	if c := check(t, rep, "initial", "ping matrix"); !strings.Contains(c.Summary, "12/12 pairs answered") {
		t.Errorf("ping matrix: %s; want 12/12 pairs", c.Summary)
	}
	c := check(t, rep, "initial", "broadcast from vm11")
	for _, vm := range []string{"vm12", "vm21", "vm22"} {
		if !strings.Contains(c.Summary, vm) {
			t.Errorf("broadcast from vm11: %s; want an answer from %s", c.Summary, vm)
		}
	}
	if c := check(t, rep, "initial", "hypervisors invisible"); !strings.Contains(c.Summary, ": 0 answers") {
		t.Errorf("hypervisors invisible: %s", c.Summary)
	}
	// two-hypervisors names no protocol: the sites run l2wg's default.
	if DefaultMeshProtocol() == ProtocolShortestPath {
		if c := find(t, rep, "initial", "spanning tree"); c.Status != statusSkip || !strings.Contains(c.Summary, "shortest-path") {
			t.Errorf("spanning tree: %s: %s; want a skip: l2wg's default is the shortest-path mesh", c.Status, c.Summary)
		}
	} else if c := check(t, rep, "initial", "spanning tree"); !strings.HasPrefix(c.Summary, "root hv1;") {
		t.Errorf("spanning tree: %s; want hv1 as root (priority 24576)", c.Summary)
	}
}

func TestRunFiveSites(t *testing.T) {
	t.Parallel()
	rep, _ := runShipped(t, "five-sites", "5s")
	// pi0 peers only with rho, behind NAT: reaching every VM means going
	// through rho.
	if c := check(t, rep, "initial", "ping matrix"); !strings.Contains(c.Summary, "20/20 pairs answered") {
		t.Errorf("ping matrix: %s; want 20/20 pairs", c.Summary)
	}
	check(t, rep, "initial", "broadcast from vm-pi0")
	c := check(t, rep, "initial", "nat")
	if !strings.Contains(strings.Join(c.Details, "\n"), "rho (no endpoint configured) sees pi0 at 10.0.6.1:") {
		t.Errorf("nat: %v; want rho to see pi0 at pi0-nat's address 10.0.6.1", c.Details)
	}
	// The sites run the shortest-path mesh: no tree, every pair on its
	// shortest path (TestShortestPathsDetourUnderRSTP: the tree's detour).
	if c := find(t, rep, "initial", "spanning tree"); c.Status != statusSkip {
		t.Errorf("spanning tree: %s: %s; want a skip (the shortest-path mesh)", c.Status, c.Summary)
	}
	if c := check(t, rep, "initial", "shortest paths"); !strings.HasPrefix(c.Summary, "10/10 VM pairs within") {
		t.Errorf("shortest paths: %s; want 10/10 pairs", c.Summary)
	}
	// Roaming: pi0 moves, rho's config stays, traffic resumes.
	if c := check(t, rep, "roam pi0", "ping matrix"); !strings.Contains(c.Summary, "20/20 pairs answered") {
		t.Errorf("ping matrix after roaming: %s; want 20/20 pairs", c.Summary)
	}
	c = check(t, rep, "roam pi0", "roaming")
	if d := strings.Join(c.Details, "\n"); !strings.Contains(d, "rho sees pi0 at 10.0.6.3:") || !strings.Contains(d, "node.toml unchanged") {
		t.Errorf("roaming: %v; want rho to follow pi0 to 10.0.6.3 with its node.toml unchanged", c.Details)
	}
}

// TestRunTriangle runs the triangle with the spanning tree (lab run
// -protocol rstp; TestMeshFailover runs it with the mesh): one tree after
// every event.
func TestRunTriangle(t *testing.T) {
	t.Parallel()
	rep, _ := runShipped(t, "triangle", "tri", "-protocol", "rstp")
	for _, stage := range []string{"initial", "cut a b", "heal a b", "stop c", "start c"} {
		c := check(t, rep, stage, "ping matrix")
		want := "6/6 pairs"
		if stage == "stop c" {
			want = "2/2 pairs"
		}
		if !strings.Contains(c.Summary, want) {
			t.Errorf("%s: ping matrix: %s; want %s", stage, c.Summary, want)
		}
		check(t, rep, stage, "spanning tree")
	}
	if c := check(t, rep, "cut a b", "spanning tree"); !strings.Contains(c.Summary, "forwarding a-c b-c") {
		t.Errorf("after cut a b: %s; want the tree a-c, b-c", c.Summary)
	}
}

// TestRunSkipsLoopsWithoutSTP runs the triangle with an l2wg from before the
// spanning tree (a wrapper whose check rejects [stp] as that l2wg did): the
// run is skipped, not a broadcast storm, and leaves nothing behind.
func TestRunSkipsLoopsWithoutSTP(t *testing.T) {
	t.Parallel()
	needRoot(t)
	tl := newTestLab(t, "nostp")
	old := filepath.Join(t.TempDir(), "l2wg-old")
	script := "#!/bin/sh\n" +
		"if [ \"$1\" = check ] && grep -q '^\\[stp\\]' \"$3\"; then echo \"$3:12: stp: unknown field\" >&2; exit 1; fi\n" +
		"exec " + tl.bin + " \"$@\"\n"
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	jsonPath := filepath.Join(t.TempDir(), "report.json")
	// That l2wg had no mesh either: the triangle with the spanning tree.
	out, code := tl.l2wg(time.Minute, "lab", "run", "triangle", "-protocol", "rstp", "-n", tl.name, "-state-dir", tl.root, "-l2wg", old, "-json", jsonPath)
	if code != 0 || !strings.Contains(out, "SKIPPED: this l2wg has no spanning tree") {
		t.Errorf("exit %d; want 0 and a skip:\n%s", code, out)
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil || rep.Skipped == "" || len(rep.Checks) != 0 {
		t.Errorf("report %+v (%v); want skipped, no checks", rep, err)
	}
	tl.assertGone(nil)
}
