package netns

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newTestLab returns a lab that is closed when the test ends, or skips the
// test when it cannot make namespaces.
func newTestLab(t *testing.T) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	l, err := New("", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

// mustDo fails the test at once on err.
func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLabBuildsAndRemovesATopology(t *testing.T) {
	l := newTestLab(t)
	mustDo(t, l.AddNS("sw"))
	mustDo(t, l.Bridge("sw", "br0"))
	mustDo(t, l.AddHost("a", "sw", "br0", "pa", "192.168.99.1/24"))
	mustDo(t, l.AddHost("b", "sw", "br0", "pb", "192.168.99.2/24"))

	if got, err := l.LinkInfo("sw", "pa"); err != nil || got.Master != "br0" || !got.IsUp() {
		t.Fatalf("LinkInfo(sw, pa) = %+v, %v; want up, master br0", got, err)
	}
	if ok, err := l.LinkExists("a", "eth0"); err != nil || !ok {
		t.Fatalf("LinkExists(a, eth0) = %v, %v; want true", ok, err)
	}
	if ok, err := l.LinkExists("a", "pa"); err != nil || ok {
		t.Fatalf("LinkExists(a, pa) = %v, %v; want false: pa lives in sw", ok, err)
	}

	// TCP from a to b through the bridge, with sockets made by Do.
	ln, err := l.Listen("b", "tcp", "192.168.99.2:0")
	mustDo(t, err)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := l.DialTimeout("a", "tcp", ln.Addr().String(), 5*time.Second)
	mustDo(t, err)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := []byte("through the lab bridge")
	mustDo(t, func() error { _, err := c.Write(msg); return err }())
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, %v; want %q", got, err, msg)
	}

	// The host's own namespace has no such address: Do did not leak.
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), 200*time.Millisecond); err == nil {
		t.Fatalf("dial %s from the host namespace succeeded; want failure", ln.Addr())
	}

	mustDo(t, l.Close())
	for _, ns := range []string{"sw", "a", "b"} {
		if _, err := os.Stat(l.Path(ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Close, %s still exists (%v)", l.Path(ns), err)
		}
	}
}

func TestVethRejectsLongNames(t *testing.T) {
	l := newTestLab(t)
	mustDo(t, l.AddNS("a"))
	if err := l.Veth("a", "sixteen-bytes-xx", "a", "b"); err == nil {
		t.Fatal("Veth with a 16-byte name succeeded; want error")
	}
}

func TestPacketSocketCarriesTaggedFrames(t *testing.T) {
	l := newTestLab(t)
	mustDo(t, l.AddNS("a"))
	mustDo(t, l.AddNS("b"))
	mustDo(t, l.Veth("a", "eth0", "b", "eth0"))
	bmac, err := l.MAC("b", "eth0")
	mustDo(t, err)
	amac, err := l.MAC("a", "eth0")
	mustDo(t, err)

	rx, err := l.OpenPacket("b", "eth0")
	mustDo(t, err)
	tx, err := l.OpenPacket("a", "eth0")
	mustDo(t, err)

	// 1518 bytes: MACs, tag (VID 100, PCP 5), EtherType 0x88b5 (local
	// experimental), payload; as large as a tagged frame on MTU 1500 gets.
	frame := make([]byte, 1518)
	copy(frame[0:], bmac)
	copy(frame[6:], amac)
	copy(frame[12:], []byte{0x81, 0x00, 0xa0, 0x64, 0x88, 0xb5})
	for i := 18; i < len(frame); i++ {
		frame[i] = byte(i * 7)
	}
	mustDo(t, tx.Send(frame))

	deadline := time.Now().Add(5 * time.Second)
	for {
		fr, err := rx.Recv(deadline)
		if err != nil {
			t.Fatalf("tagged frame not received: %v", err)
		}
		if len(fr.Data) < 18 || !bytes.Equal(fr.Data[6:12], amac) || !bytes.Equal(fr.Data[16:18], []byte{0x88, 0xb5}) {
			continue // IPv6 noise from the veth coming up
		}
		if !fr.Tagged || fr.VID() != 100 || fr.TCI>>13 != 5 {
			t.Errorf("received tag: tagged=%v tci=%#04x; want VID 100 PCP 5", fr.Tagged, fr.TCI)
		}
		if !bytes.Equal(fr.Data, frame) {
			t.Errorf("received %d bytes, differ from the %d sent", len(fr.Data), len(frame))
		}
		return
	}
}

func TestRecvHonoursDeadline(t *testing.T) {
	l := newTestLab(t)
	mustDo(t, l.AddNS("a"))
	mustDo(t, l.Veth("a", "x0", "a", "x1"))
	mustDo(t, l.Sysctl("a", "net.ipv6.conf.all.disable_ipv6", "1"))
	s, err := l.OpenPacket("a", "x0")
	mustDo(t, err)
	start := time.Now()
	_, err = s.Recv(start.Add(200 * time.Millisecond))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Recv on a quiet link = %v; want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Recv took %v to time out; want about 200ms", d)
	}
}

func TestSysctlIsPerNamespace(t *testing.T) {
	l := newTestLab(t)
	mustDo(t, l.AddNS("a"))
	mustDo(t, l.Sysctl("a", "net.ipv4.icmp_echo_ignore_broadcasts", "0"))
	out, err := l.Exec("a", "cat", "/proc/sys/net/ipv4/icmp_echo_ignore_broadcasts")
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("in a: icmp_echo_ignore_broadcasts = %q, %v; want 0", out, err)
	}
}

func TestStartStop(t *testing.T) {
	l := newTestLab(t)
	mustDo(t, l.AddNS("a"))

	clean, err := l.Start("a", "sh", "-c", `trap 'echo bye >&2; exit 0' TERM; echo hello >&2; while :; do sleep 0.05; done`)
	mustDo(t, err)
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(clean.Log(), "hello") })
	if err := clean.Stop(); err != nil {
		t.Errorf("Stop of a process that exits 0 on SIGTERM = %v; want nil", err)
	}
	if !strings.Contains(clean.Log(), "bye") {
		t.Errorf("log = %q; want the SIGTERM handler's output", clean.Log())
	}

	stubborn, err := l.Start("a", "sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	mustDo(t, err)
	stubborn.StopTimeout = 300 * time.Millisecond
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(stubborn.Log(), "ready") })
	if err := stubborn.Stop(); !errors.Is(err, ErrKilled) {
		t.Errorf("Stop of a process ignoring SIGTERM = %v; want ErrKilled", err)
	}

	failing, err := l.Start("a", "sh", "-c", "exit 3")
	mustDo(t, err)
	<-failing.Done()
	var ee *exec.ExitError
	if err := failing.Stop(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Stop of a process that exited 3 = %v; want exit status 3", err)
	}
}

func TestCloseKillsProcesses(t *testing.T) {
	l := newTestLab(t)
	mustDo(t, l.AddNS("a"))
	p, err := l.Start("a", "sleep", "600")
	mustDo(t, err)
	mustDo(t, l.Close())
	select {
	case <-p.Done():
	default:
		t.Fatalf("%s still runs after Close", p)
	}
}

func TestCleanupStaleRemovesOnlyDeadRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	const base = "l2wgtstale"
	live, err := New(base, t.TempDir())
	mustDo(t, err)
	t.Cleanup(func() { live.Close() })
	mustDo(t, live.AddNS("a"))

	// No process has a pid above the kernel's maximum (4194304).
	dead := base + "4194305-1-a"
	if _, err := run("ip", "netns", "add", dead); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNS(dead) })

	deleted, err := CleanupStale(base)
	mustDo(t, err)
	if len(deleted) != 1 || deleted[0] != dead {
		t.Errorf("CleanupStale deleted %q; want only %q", deleted, dead)
	}
	if _, err := os.Stat(filepath.Join(runDir, dead)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s survived CleanupStale", dead)
	}
	if _, err := os.Stat(live.Path("a")); err != nil {
		t.Errorf("live lab's namespace removed by CleanupStale: %v", err)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
