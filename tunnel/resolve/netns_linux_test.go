package resolve

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/tunnel"
)

// The namespace test runs this test binary as two tunnel nodes, one per
// network namespace (see runNode).
func TestMain(m *testing.M) {
	if role := os.Getenv("L2WG_RESOLVE_NODE"); role != "" {
		runNode(role)
		return
	}
	os.Exit(m.Run())
}

// nodeSwitch is a node's whole switch: "a" counts the frames that come
// back and prints the count; "b" sends every frame back where it came from.
type nodeSwitch struct {
	role  string
	mu    sync.Mutex
	ports []bridge.Port
	rx    atomic.Int64
}

func (s *nodeSwitch) AddPort(_ string, p bridge.Port) bridge.PortID {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ports = append(s.ports, p)
	return bridge.PortID(len(s.ports) - 1)
}
func (s *nodeSwitch) RemovePort(bridge.PortID) {}
func (s *nodeSwitch) Input(in bridge.PortID, frames []bridge.Frame) {
	if s.role == "b" {
		s.mu.Lock()
		p := s.ports[in]
		s.mu.Unlock()
		p.WriteFrames(frames)
		return
	}
	fmt.Printf("rx %d\n", s.rx.Add(int64(len(frames))))
}

// runNode is one node: a tunnel with one peer, and on "a" a re-resolver
// with the real resolver (which reads the /etc/hosts that ip netns exec
// mounted) and a frame to the peer every 50 ms.
func runNode(role string) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	fail := func(err error) { log.Error("node", "err", err); os.Exit(1) }
	var key, peer [32]byte
	if _, err := hex.Decode(key[:], []byte(os.Getenv("L2WG_KEY"))); err != nil {
		fail(err)
	}
	if _, err := hex.Decode(peer[:], []byte(os.Getenv("L2WG_PEER"))); err != nil {
		fail(err)
	}
	sw := &nodeSwitch{role: role}
	tn, err := tunnel.New(tunnel.Config{PrivateKey: key, ListenPort: 51820, Bind: conn.NewDefaultBind(), Logger: log}, sw)
	if err != nil {
		fail(err)
	}
	defer tn.Close()
	port, err := tn.AddPeer(tunnel.PeerConfig{Name: "peer", PublicKey: peer, Endpoint: os.Getenv("L2WG_ENDPOINT")})
	if err != nil {
		fail(err)
	}
	if err := tn.Up(); err != nil {
		fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if role == "a" {
		stale, err := time.ParseDuration(os.Getenv("L2WG_STALE"))
		if err != nil {
			fail(err)
		}
		go New(Tunnel(tn), Config{Stale: stale, Logger: log}).Run(ctx)
		frame := make([]byte, 60)
		copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				port.WriteFrames([]bridge.Frame{{Data: frame}})
			}
		}
	}
	<-ctx.Done()
}

// lockedBuffer collects a process's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestEndpointFollowsDNSInNamespaces: node a dials b by the name
// peer-b.l2wg.test, from a's /etc/netns hosts file. b sits behind a firewall
// that lets it answer but not start a flow, so when b's address changes,
// b's own packets cannot make a roam to it: a finds b again only by
// resolving the name anew, and frames flow again without a restart.
func TestEndpointFollowsDNSInNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make deps)", tool)
		}
	}
	nsA, nsB := fmt.Sprintf("l2wgres-a%d", os.Getpid()), fmt.Sprintf("l2wgres-b%d", os.Getpid())
	hostsDir := filepath.Join("/etc/netns", nsA)
	_, statErr := os.Stat("/etc/netns")
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", nsA).Run()
		exec.Command("ip", "netns", "del", nsB).Run()
		os.RemoveAll(hostsDir)
		if statErr != nil {
			os.Remove("/etc/netns") // made by this test; only if empty
		}
	})
	ipCmd(t, "netns", "add", nsA)
	ipCmd(t, "netns", "add", nsB)
	ipCmd(t, "-n", nsA, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", nsB)
	ipCmd(t, "-n", nsA, "addr", "add", "10.99.0.1/24", "dev", "va")
	ipCmd(t, "-n", nsB, "addr", "add", "10.99.0.2/24", "dev", "vb")
	for _, ns := range []string{nsA, nsB} {
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	}
	ipCmd(t, "-n", nsA, "link", "set", "va", "up")
	ipCmd(t, "-n", nsB, "link", "set", "vb", "up")
	// b answers a's flows and starts none (as behind a stateful firewall).
	nft := exec.Command("ip", "netns", "exec", nsB, "nft", "-f", "-")
	nft.Stdin = strings.NewReader("table inet t {\n chain out {\n  type filter hook output priority 0;\n  udp sport 51820 ct state new drop\n }\n}\n")
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s", nsB, err, out)
	}
	hosts := filepath.Join(hostsDir, "hosts")
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	setHosts := func(addr string) {
		// Written in place: ip netns exec bind-mounted this very file over
		// a's /etc/hosts, so a new file (a rename) would not show.
		if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"+addr+" peer-b.l2wg.test\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setHosts("10.99.0.2")

	keyA, keyB := key(t), key(t)
	pubA, pubB := tunnel.PublicKey(keyA), tunnel.PublicKey(keyB)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := func(ns, role string, k, peer [32]byte, endpoint string) (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command("ip", "netns", "exec", ns, self, "-test.run=^$")
		cmd.Env = append(os.Environ(), "L2WG_RESOLVE_NODE="+role, "L2WG_KEY="+hex.EncodeToString(k[:]),
			"L2WG_PEER="+hex.EncodeToString(peer[:]), "L2WG_ENDPOINT="+endpoint, "L2WG_STALE=2s")
		stderr := &lockedBuffer{}
		cmd.Stderr = stderr
		return cmd, stderr
	}
	b, bLog := start(nsB, "b", keyB, pubA, "")
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	a, aLog := start(nsA, "a", keyA, pubB, "peer-b.l2wg.test:51820")
	out, err := a.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*exec.Cmd{a, b} {
		t.Cleanup(func() {
			c.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				c.Process.Kill()
				<-done
			}
		})
	}
	var rx atomic.Int64
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, err := strconv.ParseInt(strings.TrimPrefix(sc.Text(), "rx "), 10, 64); err == nil {
				rx.Store(n)
			}
		}
	}()
	waitRx := func(what string, from int64, within time.Duration) time.Duration {
		t.Helper()
		t0 := time.Now()
		for rx.Load() <= from+5 {
			if time.Since(t0) > within {
				t.Fatalf("%s: no frames back within %s (%d so far)\na:\n%s\nb:\n%s", what, within, rx.Load(), aLog, bLog)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(t0)
	}
	waitRx("first contact", 0, 30*time.Second)

	// b moves. Its packets to a are now new flows, and dropped.
	// (The old address goes first: deleting a primary address deletes the
	// secondaries of its subnet.)
	ipCmd(t, "-n", nsB, "addr", "del", "10.99.0.2/24", "dev", "vb")
	ipCmd(t, "-n", nsB, "addr", "add", "10.99.0.3/24", "dev", "vb")
	time.Sleep(200 * time.Millisecond) // frames in flight before the move
	moved := rx.Load()
	// With the old answer in DNS, a has no way to b: over 3 s (past the
	// stale threshold, several re-resolutions) nothing comes back.
	time.Sleep(3 * time.Second)
	if n := rx.Load(); n > moved {
		t.Fatalf("%d frames came back from b's old address or by roaming; the test would prove nothing", n-moved)
	}
	setHosts("10.99.0.3")
	took := waitRx("after the name moved", moved, 30*time.Second)
	t.Logf("frames flow again %s after the hosts entry changed (stale threshold 2s, interval 500ms, Go's hosts cache up to 5s)", took.Round(10*time.Millisecond))
	if !strings.Contains(aLog.String(), `msg="peer endpoint re-resolved" peer=peer endpoint=peer-b.l2wg.test:51820 from=10.99.0.2:51820 to=10.99.0.3:51820`) {
		t.Errorf("a did not log the re-resolution at info:\n%s", aLog)
	}
}
