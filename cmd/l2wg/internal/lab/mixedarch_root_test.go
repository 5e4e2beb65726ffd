package lab

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crossBuild builds l2wg for linux/goarch (with GOARM or GOMIPS in env)
// into dir and checks the ELF header says that architecture.
func crossBuild(t *testing.T, dir, goarch string, machine elf.Machine, env ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "l2wg-"+goarch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/l2wg/l2wg/cmd/l2wg")
	cmd.Env = append(os.Environ(), append([]string{"GOOS=linux", "GOARCH=" + goarch, "CGO_ENABLED=0"}, env...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOARCH=%s go build: %v\n%s", goarch, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != machine || f.Class != elf.ELFCLASS32 {
		t.Fatalf("%s is %s %s, want %s ELFCLASS32", bin, f.Machine, f.Class, machine)
	}
	return bin
}

// wrapper writes a script that notes each start in marker and then runs
// argv followed by its own arguments (exec: the l2wg process is what the
// lab signals).
func wrapper(t *testing.T, path, marker string, argv ...string) string {
	t.Helper()
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >>%s\nexec %s \"$@\"\n", marker, strings.Join(argv, " "))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunMixedArchitectures runs five-sites with vorke and pi0 on the 386
// build (natively: this kernel runs 32-bit x86), the others on amd64.
// Every check of every stage must pass: the label and chunk headers,
// probes, BPDUs and l2wg show's JSON cross between architectures, pi0
// reaches everyone through rho (amd64 in transit) and roams.
//
// The 32-bit ARM build cannot take a site under qemu-user: qemu 7.2 does
// not implement the SIOCBRADDIF ioctl (ENOSYS when l2wg attaches its TAP
// to br0), so ARM is covered by the unit tests under qemu (make arch-test).
func TestRunMixedArchitectures(t *testing.T) {
	needRoot(t, "nft")
	dir := t.TempDir()
	bin386 := crossBuild(t, dir, "386", elf.EM_386)
	marker386, markerPi0 := filepath.Join(dir, "started-vorke"), filepath.Join(dir, "started-pi0")
	run386 := wrapper(t, filepath.Join(dir, "run-vorke"), marker386, bin386)
	runPi0 := wrapper(t, filepath.Join(dir, "run-pi0"), markerPi0, bin386)

	tl := newTestLab(t, "mix")
	before := hostLinks(t)
	jsonPath := filepath.Join(dir, "report.json")
	out, code := tl.l2wg(6*time.Minute, "lab", "run", "five-sites", "-n", tl.name, "-state-dir", tl.root, "-json", jsonPath,
		"-site-l2wg", "vorke="+run386, "-site-l2wg", "pi0="+runPi0)
	t.Logf("l2wg lab run five-sites (vorke and pi0 386):\n%s", out)
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatalf("exit %d, no JSON report: %v", code, err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || code != 0 || rep.Error != "" || rep.Skipped != "" {
		t.Fatalf("passed %v, exit %d, error %q, skipped %q; want a pass", rep.Passed, code, rep.Error, rep.Skipped)
	}
	// Every check passes; one the topology does not judge (a skip, as in
	// the all-amd64 run) is no failure.
	for _, c := range rep.Checks {
		if c.Status != statusOK && c.Status != statusSkip {
			t.Errorf("%s: %s: %s: %s", c.Stage, c.Name, c.Status, c.Summary)
		}
	}
	if c := check(t, &rep, "initial", "ping matrix"); !strings.Contains(c.Summary, "20/20 pairs answered") {
		t.Errorf("ping matrix: %s; want 20/20 pairs", c.Summary)
	}
	if c := check(t, &rep, "roam pi0", "ping matrix"); !strings.Contains(c.Summary, "20/20 pairs answered") {
		t.Errorf("ping matrix after pi0 roamed: %s; want 20/20 pairs", c.Summary)
	}
	for site, marker := range map[string]string{"vorke": marker386, "pi0": markerPi0} {
		b, err := os.ReadFile(marker)
		if err != nil || !strings.Contains(string(b), "up -c ") || !strings.Contains(string(b), site) {
			t.Errorf("%s's l2wg up did not go through its binary: %q %v", site, b, err)
		}
	}
	tl.assertGone(before)
}
