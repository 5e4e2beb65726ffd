package main

// End-to-end tests: a real l2wg binary, real Linux bridges, real frames, in
// network namespaces built with internal/netns. Run them with
//
//	go test ./cmd/l2wg -run E2E -v
//
// as root (CI is root; elsewhere the namespace tests skip). They drive ping
// (iputils-ping) and, for the key interop test, wg (wireguard-tools); make
// test installs both. Every E2E test runs in parallel with the others in a
// lab of its own, so the suite takes about as long as its slowest test.
//
// This file holds the shared machinery (the binary, keys, configs, logs) and
// the tests that need no namespace; e2e_topo_test.go builds topologies,
// e2e_checks_test.go holds the assertions, and e2e_twohv_test.go and
// e2e_chain_test.go the scenarios.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/testbin"
)

// TestMain removes the namespaces a crashed earlier run left behind. The
// l2wg binary is built on first use (l2wgBinary), so unit tests run without
// paying for it.
func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		if stale, err := netns.CleanupStale(""); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: cleanup of stale namespaces:", err)
		} else if len(stale) > 0 {
			fmt.Fprintf(os.Stderr, "e2e: removed %d stale namespaces of an earlier run\n", len(stale))
		}
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// l2wgBinary returns the path of the l2wg binary, built once per test run.
func l2wgBinary(t *testing.T) string { return testbin.L2WG(t) }

// needRoot skips a test that builds namespaces when not running as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces (CI runs as root)")
	}
}

// needTools fails a test whose tools are missing: CI installs them (make
// deps), and a lab test that silently skips would hide a broken setup.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: run make deps (apt-get install iputils-ping iperf3 wireguard-tools arping)", tool)
		}
	}
}

// runL2WG runs the binary with args and stdin on the host and returns stdout,
// stderr and the exit code (-1 if it did not exit by itself within 20s).
func runL2WG(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, l2wgBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		code = -1
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run l2wg %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// keyPair is a node's WireGuard key pair, the private key in a file.
type keyPair struct {
	PrivateFile string // absolute path, mode 0600
	Public      string // base64
}

// genKeyPair makes a key pair with l2wg genkey and l2wg pubkey and writes the
// private key to dir/name.key.
func genKeyPair(t *testing.T, dir, name string) keyPair {
	t.Helper()
	priv, stderr, code := runL2WG(t, "", "genkey")
	if code != 0 || !wgKey.MatchString(priv) {
		t.Fatalf("l2wg genkey: exit %d, stdout %q, stderr %q; want one base64 key", code, priv, stderr)
	}
	pub, stderr, code := runL2WG(t, priv, "pubkey")
	if code != 0 || !wgKey.MatchString(pub) {
		t.Fatalf("l2wg pubkey: exit %d, stdout %q, stderr %q; want one base64 key", code, pub, stderr)
	}
	path := filepath.Join(dir, name+".key")
	if err := os.WriteFile(path, []byte(priv), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyPair{PrivateFile: path, Public: strings.TrimSpace(pub)}
}

// wgKey is the output of wg genkey / wg pubkey: 32 bytes of base64 and a
// newline.
var wgKey = regexp.MustCompile(`^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n$`)

// nodeConfig is what a test puts into a node.toml.
type nodeConf struct {
	PrivateKeyFile string // relative to the config's directory, or absolute
	ListenPort     int
	IsolateHost    *bool // nil: leave it out (the default, true)
	TAPName        string
	Bridge         string
	STP            string // the [stp] table's body; "" means shortTimers
	Mesh           string // [mesh] protocol; "" leaves it out (l2wg's default)
	Persistent     bool
	Offload        *bool // nil: leave it out (the default, true)
	Peers          []peerConf
}

// shortTimers are the shortest 802.1D allows (hello 1 s, forward delay
// 4 s, max age 6 s): a new port forwards 8 s after its link comes up.
const shortTimers = "hello_time = \"1s\"\nforward_delay = \"4s\"\nmax_age = \"6s\"\n"

type peerConf struct {
	Name      string
	PublicKey string
	Endpoint  string // "" leaves it out
	Keepalive int    // 0 leaves it out
	Cost      int    // 0 leaves it out
}

// render writes the config as node.toml text.
func (c nodeConf) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "private_key_file = %q\n", c.PrivateKeyFile)
	fmt.Fprintf(&b, "listen_port = %d\n", c.ListenPort)
	if c.IsolateHost != nil {
		fmt.Fprintf(&b, "isolate_host = %v\n", *c.IsolateHost)
	}
	fmt.Fprintf(&b, "\n[tap]\nname = %q\nmtu = 1500\nbridge = %q\npersistent = %v\n", c.TAPName, c.Bridge, c.Persistent)
	if c.Offload != nil {
		fmt.Fprintf(&b, "offload = %v\n", *c.Offload)
	}
	stpBody := c.STP
	if stpBody == "" {
		stpBody = shortTimers
	}
	fmt.Fprintf(&b, "\n[stp]\n%s", stpBody)
	if c.Mesh != "" {
		fmt.Fprintf(&b, "\n[mesh]\nprotocol = %q\n", c.Mesh)
	}
	for _, p := range c.Peers {
		fmt.Fprintf(&b, "\n[[peer]]\nname = %q\npublic_key = %q\n", p.Name, p.PublicKey)
		if p.Endpoint != "" {
			fmt.Fprintf(&b, "endpoint = %q\n", p.Endpoint)
		}
		if p.Keepalive != 0 {
			fmt.Fprintf(&b, "persistent_keepalive = %d\n", p.Keepalive)
		}
		if p.Cost != 0 {
			fmt.Fprintf(&b, "cost = %d\n", p.Cost)
		}
	}
	return b.String()
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// TestE2EConfigErrors runs l2wg up on broken configs: each must exit 1 with
// a message that names the file, the line and the field, and must not panic.
func TestE2EConfigErrors(t *testing.T) {
	t.Parallel()
	l2wgBinary(t)
	const (
		pubA = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
		pubB = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
	)
	// base is a valid config; the line numbers below count from its first
	// line, and each case appends to it.
	base := "" +
		"private_key_file = \"node.key\"\n" + // 1
		"listen_port = 51820\n" + // 2
		"[tap]\n" + // 3
		"name = \"l2wgcfg0\"\n" + // 4
		"[[peer]]\n" + // 5
		"name = \"a\"\n" + // 6
		"public_key = \"" + pubA + "\"\n" // 7
	cases := []struct {
		name   string
		toml   string
		field  string // must appear in stderr
		lines  []int  // stderr must say node.toml:<one of these>
		noKeys bool   // leave node.key out
	}{
		{"unknown key", "bogus_key = 1\n" + base, "bogus_key", []int{1}, false},
		{"unknown key in peer", base + "endpont = \"10.0.0.2:51820\"\n", "endpont", []int{8}, false},
		{"unknown key in table", strings.Replace(base, "[tap]\n", "[tap]\nbirdge = \"br0\"\n", 1), "birdge", []int{4}, false},
		{"missing key file", base, "private_key_file", []int{1}, true},
		{"bad public key", base + "[[peer]]\nname = \"b\"\npublic_key = \"not a key\"\n", "public_key", []int{10}, false},
		{"bad endpoint without port", base + "endpoint = \"10.0.0.2\"\n", "endpoint", []int{8}, false},
		{"bad endpoint port", base + "endpoint = \"10.0.0.2:70000\"\n", "endpoint", []int{8}, false},
		{"duplicate peer key", base + "[[peer]]\nname = \"b\"\npublic_key = \"" + pubA + "\"\n", "public_key", []int{8, 10}, false},
		{"duplicate peer name", base + "[[peer]]\nname = \"a\"\npublic_key = \"" + pubB + "\"\n", "name", []int{8, 9}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if !c.noKeys {
				writeFile(t, dir, "node.key", "8GboYh0YF3q/hJhoPFoL3HM/ObgOuC8YI6UXWsgWL2M=\n")
			}
			path := writeFile(t, dir, "node.toml", c.toml)
			_, stderr, code := runL2WGConfig(t, path)
			if code != 1 {
				t.Errorf("exit status %d; want 1\nstderr:\n%s", code, tail(stderr, 20))
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Errorf("stderr shows a panic:\n%s", tail(stderr, 40))
			}
			if !strings.Contains(stderr, "node.toml") {
				t.Errorf("stderr does not name the file node.toml:\n%s", stderr)
			}
			if !strings.Contains(stderr, c.field) {
				t.Errorf("stderr does not name the field %q:\n%s", c.field, stderr)
			}
			found := false
			for _, line := range c.lines {
				found = found || strings.Contains(stderr, fmt.Sprintf("node.toml:%d", line))
			}
			if !found {
				t.Errorf("stderr does not name the line (node.toml:%v):\n%s", c.lines, stderr)
			}
		})
	}
}

// runL2WGConfig runs l2wg up -c path; as root inside a throwaway namespace, so
// that a binary that wrongly accepts the config cannot touch the host's
// network.
func runL2WGConfig(t *testing.T, path string) (stdout, stderr string, code int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return runL2WG(t, "", "up", "-c", path)
	}
	lab, err := netns.New("", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	if err := lab.AddNS("cfg"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := lab.ExecContext(ctx, "cfg", l2wgBinary(t), "up", "-c", path)
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return "", string(out), -1
	case errors.As(err, &ee):
		return "", string(out), ee.ExitCode()
	case err != nil:
		t.Fatalf("run l2wg up -c %s: %v", path, err)
	}
	return "", string(out), 0
}

// TestE2EKeysInteropWG checks that l2wg genkey/pubkey and wg genkey/pubkey
// make and read the same keys.
func TestE2EKeysInteropWG(t *testing.T) {
	t.Parallel()
	l2wgBinary(t)
	needTools(t, "wg")
	wg := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("wg", args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("wg %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	l2wg := func(stdin string, args ...string) string {
		t.Helper()
		out, stderr, code := runL2WG(t, stdin, args...)
		if code != 0 {
			t.Fatalf("l2wg %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		return out
	}
	for i := range 3 {
		priv := l2wg("", "genkey")
		if !wgKey.MatchString(priv) {
			t.Fatalf("l2wg genkey = %q; want a wg-style key line", priv)
		}
		if got, want := l2wg(priv, "pubkey"), wg(priv, "pubkey"); got != want {
			t.Errorf("key %d from l2wg genkey: l2wg pubkey = %q, wg pubkey = %q", i, got, want)
		}
		priv = wg("", "genkey")
		if got, want := l2wg(priv, "pubkey"), wg(priv, "pubkey"); got != want {
			t.Errorf("key %d from wg genkey: l2wg pubkey = %q, wg pubkey = %q", i, got, want)
		}
	}
	// A key without its trailing newline, as a file edited by hand, reads
	// the same.
	priv := wg("", "genkey")
	if got, want := l2wg(strings.TrimSpace(priv), "pubkey"), wg(priv, "pubkey"); got != want {
		t.Errorf("key without newline: l2wg pubkey = %q, wg pubkey = %q", got, want)
	}
}
