package tap

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Test network namespaces. Every test that touches the kernel creates its
// own namespaces (ip netns add), and t.Cleanup deletes them, even when the
// test fails. Devices are opened on a thread locked into a namespace: a TAP,
// like a socket, belongs to the namespace of the thread that creates it.

var nsSeq atomic.Int32

type netns struct {
	name string
	fd   int
}

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates network namespaces and TAPs")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("needs ip (iproute2)")
	}
}

// newNetns creates a namespace with lo up, deleted when the test ends.
func newNetns(tb testing.TB) *netns {
	tb.Helper()
	requireRoot(tb)
	name := fmt.Sprintf("l2wgtap-%d-%d", os.Getpid(), nsSeq.Add(1))
	ip(tb, "netns", "add", name)
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("open netns %s: %v", name, err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	ns := &netns{name: name, fd: fd}
	ns.ip(tb, "link", "set", "lo", "up")
	return ns
}

// enter moves the calling goroutine, locked to its thread, into ns until the
// test ends. It must be called from the test goroutine (whose cleanups run on
// it). If the way back fails, the thread stays locked and dies with the
// goroutine, so no other goroutine runs in the wrong namespace.
func (ns *netns) enter(tb testing.TB) {
	tb.Helper()
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("open own netns: %v", err)
	}
	if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
		unix.Close(orig)
		tb.Fatalf("enter netns %s: %v", ns.name, err)
	}
	tb.Cleanup(func() {
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		unix.Close(orig)
	})
}

// do runs fn on a fresh thread in ns and waits for it. Sockets fn creates
// stay in ns and may be used from any goroutine afterwards.
func (ns *netns) do(tb testing.TB, fn func()) {
	tb.Helper()
	done := make(chan bool)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			done <- false
			return
		}
		fn()
		done <- true
	}()
	if !<-done {
		tb.Fatalf("enter netns %s", ns.name)
	}
}

func ip(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ip runs ip -n ns args.
func (ns *netns) ip(tb testing.TB, args ...string) string {
	tb.Helper()
	return ip(tb, append([]string{"-n", ns.name}, args...)...)
}

// ipLink is what ip -j link show says about a link.
type ipLink struct {
	Name     string   `json:"ifname"`
	MTU      int      `json:"mtu"`
	Address  string   `json:"address"`
	Flags    []string `json:"flags"`
	Master   string   `json:"master"`
	LinkInfo struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

func (l *ipLink) up() bool {
	for _, f := range l.Flags {
		if f == "UP" {
			return true
		}
	}
	return false
}

// link returns the link name in ns, or nil if there is none.
func (ns *netns) link(tb testing.TB, name string) *ipLink {
	tb.Helper()
	out, err := exec.Command("ip", "-n", ns.name, "-j", "-d", "link", "show", "dev", name).Output()
	if err != nil {
		return nil // "Device does not exist"
	}
	var ls []ipLink
	if err := json.Unmarshal(out, &ls); err != nil || len(ls) != 1 {
		tb.Fatalf("ip link show %s: %v: %s", name, err, out)
	}
	return &ls[0]
}
