package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestNamedLabOutlivesItsMaker builds a named lab, finds it again from a
// second Lab value as another process would, and removes it by prefix with
// a detached process still running inside.
func TestNamedLabOutlivesItsMaker(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	prefix := fmt.Sprintf("l2wgnamedtest%d-", os.Getpid())
	t.Cleanup(func() { DeletePrefix(prefix) })
	dir := t.TempDir()

	maker, err := NewNamed(prefix, dir)
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, maker.AddNS("a"))
	mustDo(t, maker.AddNS("b"))
	mustDo(t, maker.Link("a", "b", "ul0", "10.98.0.1/24", "10.98.0.2/24"))
	if got := maker.Name("a"); got != prefix+"a" {
		t.Errorf("Name(a) = %q, want %q", got, prefix+"a")
	}
	logPath := filepath.Join(dir, "sleep.log")
	p, err := maker.StartWith("a", StartOptions{LogPath: logPath, Detach: true}, "sh", "-c", "echo started; exec sleep 60")
	mustDo(t, err)
	if err := syscall.Kill(p.PID, 0); err != nil {
		t.Fatalf("detached process %d not running: %v", p.PID, err)
	}
	// The shell writes its line before it execs sleep; wait for it (bounded)
	// so that deleting the namespaces below cannot end it before it wrote.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "started") {
			break
		}
	}
	if sid, _ := unix.Getsid(p.PID); sid != p.PID {
		t.Errorf("detached process has session %d, want its own (%d)", sid, p.PID)
	}

	// Another invocation adopts the namespaces by name.
	again, err := NewNamed(prefix, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Adopt("a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := again.Adopt("nosuch"); err == nil {
		t.Error("Adopt of a namespace that does not exist: no error")
	}
	if out, err := again.Exec("a", "ping", "-c", "1", "-W", "2", "10.98.0.2"); err != nil {
		t.Fatalf("ping across the adopted lab: %v\n%s", err, out)
	}
	names, err := ListPrefix(prefix)
	if err != nil || strings.Join(names, " ") != prefix+"a "+prefix+"b" {
		t.Errorf("ListPrefix = %v, %v; want both namespaces", names, err)
	}

	deleted, err := DeletePrefix(prefix)
	if err != nil || len(deleted) != 2 {
		t.Fatalf("DeletePrefix = %v, %v; want 2 namespaces", deleted, err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Error("the detached process outlived its namespace")
	}
	if _, err := os.Stat(again.Path("a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace a still exists: %v", err)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "started") {
		t.Errorf("log %s: %q, want the process's output", logPath, b)
	}
}
