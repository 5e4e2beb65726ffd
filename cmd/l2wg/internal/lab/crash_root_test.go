package lab

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// TestCrashThenDown kills l2wg lab midway, with SIGKILL so that it cleans
// up nothing, and checks that lab down then leaves no namespace, link, TAP,
// process or state behind.
func TestCrashThenDown(t *testing.T) {
	t.Parallel()
	needRoot(t)
	for _, tt := range []struct {
		verb  string
		short string
	}{
		// lab run: its l2wg die with it (death signal), its namespaces stay.
		{"run", "crashrun"},
		// lab up: its l2wg are detached and keep running after it dies.
		{"up", "crashup"},
	} {
		t.Run(tt.verb, func(t *testing.T) {
			tl := newTestLab(t, tt.short)
			before := hostLinks(t)
			var out bytes.Buffer
			cmd := exec.Command(tl.bin, "lab", tt.verb, "two-hypervisors", "-n", tl.name, "-state-dir", tl.root)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Kill it once both l2wg run, while it waits for convergence.
			dir := filepath.Join(tl.root, tl.name)
			deadline := time.Now().Add(30 * time.Second)
			for {
				st, err := readState(dir)
				if err == nil && st.Procs["l2wg hv2"].alive() {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("lab %s did not start both l2wg within 30s:\n%s", tt.verb, out.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()

			left, _ := netns.ListPrefix(nsPrefix(tl.name))
			if len(left) < 7 {
				t.Errorf("after the crash %d namespaces are left, want all 7: the crash should have left them", len(left))
			}
			st, err := readState(dir)
			if err != nil {
				t.Fatal(err)
			}
			alive := 0
			for _, r := range st.Procs {
				if r.alive() {
					alive++
				}
			}
			if tt.verb == "up" && alive == 0 {
				t.Errorf("no detached l2wg survived the crash of lab up; the test proves nothing about processes")
			}
			t.Logf("after the crash: %d namespaces, %d of the lab's processes alive", len(left), alive)

			if out, code := tl.l2wg(30*time.Second, "lab", "down", "-n", tl.name, "-state-dir", tl.root); code != 0 {
				t.Fatalf("lab down: exit %d: %s", code, out)
			}
			for _, r := range st.Procs {
				if r.alive() {
					t.Errorf("process %d (%v) still runs after lab down", r.PID, r.Argv)
				}
			}
			tl.assertGone(before)
		})
	}
}
