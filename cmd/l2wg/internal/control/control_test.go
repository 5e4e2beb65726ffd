package control

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingHandler answers status with a TAP name and counts what it serves.
type countingHandler struct{ served atomic.Int64 }

func (h *countingHandler) Status(bool) Status {
	h.served.Add(1)
	return Status{Interface: Interface{TAP: "l2wg-test"}}
}
func (h *countingHandler) Reload() ReloadResult     { h.served.Add(1); return ReloadResult{OK: true} }
func (h *countingHandler) Capture(net.Conn, string) { h.served.Add(1) }

func serveTest(t *testing.T) (string, *countingHandler) {
	t.Helper()
	tap := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l, err := Listen(tap)
	if err != nil {
		t.Fatal(err)
	}
	h := new(countingHandler)
	done := make(chan struct{})
	go func() { defer close(done); Serve(l, h) }()
	t.Cleanup(func() { l.Close(); <-done })
	return Addr(tap), h
}

func TestQueryAndReload(t *testing.T) {
	addr, h := serveTest(t)
	st, err := Query(addr, "status")
	if err != nil || st.Interface.TAP != "l2wg-test" {
		t.Fatalf("Query: %+v, %v", st, err)
	}
	if res, err := Reload(addr); err != nil || !res.OK {
		t.Fatalf("Reload: %+v, %v", res, err)
	}
	if n := h.served.Load(); n != 2 {
		t.Errorf("served %d requests; want 2", n)
	}
	if _, err := Listen(strings.TrimPrefix(addr, Prefix)); err == nil || !strings.Contains(err.Error(), "another l2wg is running") {
		t.Errorf("a second Listen on the same TAP: %v", err)
	}
}

// A client that is neither root nor the server's user gets no answer to
// show, reload or capture: run as uid 65534 (nobody) in a child process.
func TestNonRootClientIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test runs a client as uid 65534")
	}
	addr, h := serveTest(t)
	// The test binary, where nobody may run it.
	dir, err := os.MkdirTemp("", "l2wg-control-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "control.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, req := range []string{"status", "fdb", "reload", `capture {"count":1}`} {
		cmd := exec.Command(bin, "-test.run=^TestHelperClient$")
		cmd.Env = append(os.Environ(), "L2WG_CONTROL_TEST_ADDR="+addr, "L2WG_CONTROL_TEST_REQUEST="+req)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q as uid 65534: %v\n%s", req, err, out)
		}
		if !strings.Contains(string(out), "answer: 0 bytes") {
			t.Errorf("%q as uid 65534: %s; want no answer", req, out)
		}
	}
	if n := h.served.Load(); n != 0 {
		t.Errorf("the server served %d requests of uid 65534; want 0", n)
	}
	if _, err := Query(addr, "status"); err != nil || h.served.Load() != 1 {
		t.Errorf("root's query after: %v, served %d", err, h.served.Load())
	}
}

// TestHelperClient is the child of TestNonRootClientIsRefused: it sends one
// request and prints how many bytes came back.
func TestHelperClient(t *testing.T) {
	addr := os.Getenv("L2WG_CONTROL_TEST_ADDR")
	if addr == "" {
		t.Skip("the child of TestNonRootClientIsRefused")
	}
	fmt.Println("uid", os.Getuid())
	c, err := Dial(addr, os.Getenv("L2WG_CONTROL_TEST_REQUEST"), 5*time.Second)
	if err != nil {
		fmt.Println("answer: 0 bytes (dial:", err, ")")
		return
	}
	defer c.Close()
	b, _ := io.ReadAll(c)
	fmt.Printf("answer: %d bytes\n", len(b))
}
