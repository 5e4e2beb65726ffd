package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/testbin"
)

// The tests in this file need root: they build labs in network namespaces
// with a real l2wg binary, built once per test run.

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		removeStaleTestLabs()
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// removeStaleTestLabs deletes the namespaces of earlier test runs that died
// before cleaning up: relay tests' (netns.New base l2wglabr) and labs named
// t<pid>-... whose pid is gone.
func removeStaleTestLabs() {
	netns.CleanupStale("l2wglabr")
	names, _ := netns.ListPrefix(nsPrefixBase + "t")
	for _, name := range names {
		rest := strings.TrimPrefix(name, nsPrefixBase+"t")
		pid, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '-'), 0)])
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		netns.DeletePrefix(name)
	}
}

// needRoot skips a test that builds namespaces when not running as root,
// and fails it when a tool it drives is missing (CI installs them).
func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces (CI runs as root)")
	}
	for _, tool := range append([]string{"ip", "ping"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make deps)", tool)
		}
	}
}

// l2wgBinary builds the l2wg binary once per test run.
func l2wgBinary(t *testing.T) string { return testbin.L2WG(t) }

// testLab is a lab name and state directory of one test; the lab is taken
// down when the test ends, whatever happened.
type testLab struct {
	t    *testing.T
	bin  string
	name string
	root string
}

func newTestLab(t *testing.T, short string) *testLab {
	t.Helper()
	tl := &testLab{t: t, bin: l2wgBinary(t), name: fmt.Sprintf("t%d-%s", os.Getpid(), short), root: t.TempDir()}
	t.Cleanup(func() {
		if out, code := tl.l2wg(30*time.Second, "lab", "down", "-n", tl.name, "-state-dir", tl.root); code != 0 {
			t.Errorf("lab down: exit %d: %s", code, out)
		}
		if left, _ := netns.ListPrefix(nsPrefix(tl.name)); len(left) > 0 {
			t.Errorf("namespaces left after lab down: %v", left)
		}
	})
	return tl
}

// l2wg runs the binary and returns its combined output and exit code (-1
// when it ran out of time and was killed).
func (tl *testLab) l2wg(timeout time.Duration, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, tl.bin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return string(out), -1
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		tl.t.Fatalf("run l2wg %s: %v", strings.Join(args, " "), err)
	}
	return string(out), 0
}

// assertGone checks that nothing of the lab is left: no namespace, no
// process that names its state directory, no state directory, and no link
// in the host's namespace that was not there before.
func (tl *testLab) assertGone(hostLinksBefore map[string]bool) {
	t := tl.t
	t.Helper()
	if left, _ := netns.ListPrefix(nsPrefix(tl.name)); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if procs := processesNaming(tl.root); len(procs) > 0 {
		t.Errorf("processes left that name %s: %v", tl.root, procs)
	}
	if _, err := os.Stat(filepath.Join(tl.root, tl.name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory %s left (%v)", filepath.Join(tl.root, tl.name), err)
	}
	if hostLinksBefore != nil {
		for name := range hostLinks(t) {
			if !hostLinksBefore[name] {
				t.Errorf("link %s appeared in the host's namespace", name)
			}
		}
	}
}

// processesNaming lists the processes whose command line contains s.
func processesNaming(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) {
			continue
		}
		found = append(found, e.Name()+": "+strings.ReplaceAll(string(bytes.TrimRight(cmdline, "\x00")), "\x00", " "))
	}
	return found
}

// hostLinks returns the names of the links in the test's own namespace.
func hostLinks(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	links := make(map[string]bool)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			links[strings.TrimSuffix(strings.Split(f[1], "@")[0], ":")] = true
		}
	}
	return links
}
