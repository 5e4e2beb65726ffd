package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// wireguardModule is the module whose wireguard-go l2wg embeds; its root
// package is the wireguard-go command.
const wireguardModule = "golang.zx2c4.com/wireguard"

// requiredTool is a command the benchmark drives and the Debian package that
// has it.
type requiredTool struct{ Cmd, Pkg string }

// requiredTools returns the commands a run needs.
func requiredTools(withFastd bool) []requiredTool {
	tools := []requiredTool{
		{"ip", "iproute2"}, {"ss", "iproute2"}, {"ping", "iputils-ping"},
		{"iperf3", "iperf3"}, {"wg", "wireguard-tools"}, {"tincd", "tinc"},
	}
	if withFastd {
		tools = append(tools, requiredTool{"fastd", "fastd"})
	}
	return tools
}

// installTools installs, with apt-get, the packages of the tools that are
// missing.
func installTools(ctx context.Context, log *slog.Logger, tools []requiredTool) error {
	var pkgs []string
	for _, t := range tools {
		if _, err := exec.LookPath(t.Cmd); err != nil && !slices.Contains(pkgs, t.Pkg) {
			pkgs = append(pkgs, t.Pkg)
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	log.Info("installing missing tools", "packages", strings.Join(pkgs, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, argv := range [][]string{
		{"apt-get", "update", "-qq"},
		append([]string{"apt-get", "install", "-y", "-qq"}, pkgs...),
	} {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, tailLines(string(out), 5))
		}
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t.Cmd); err != nil {
			return fmt.Errorf("%s still missing after installing %s", t.Cmd, t.Pkg)
		}
	}
	return nil
}

// goIn runs the go command in dir and returns its trimmed output.
func goIn(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// repoRoot returns the directory of the main module's go.mod, as seen from
// the current directory.
func repoRoot(ctx context.Context) (string, error) {
	gomod, err := goIn(ctx, ".", "env", "GOMOD")
	if err != nil {
		return "", err
	}
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the l2wg module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}

// binaries are the programs the contestants run.
type binaries struct {
	WireguardGo        string
	WireguardGoVersion string // module version of golang.zx2c4.com/wireguard
	L2WG               string
	L2WGFromTree       bool   // built here from the repository's work tree
	L2WGB              string // -l2wg-b, or ""
}

// buildBinaries builds wireguard-go from the module version l2wg requires
// (from the module cache) and, unless l2wgBin is given, l2wg itself, into
// dir.
func buildBinaries(ctx context.Context, root, dir, l2wgBin string) (binaries, error) {
	var b binaries
	var err error
	b.WireguardGoVersion, err = goIn(ctx, root, "list", "-m", "-f", "{{.Version}}", wireguardModule)
	if err != nil {
		return b, err
	}
	b.WireguardGo = filepath.Join(dir, "wireguard-go")
	if _, err := goIn(ctx, root, "build", "-o", b.WireguardGo, wireguardModule); err != nil {
		return b, err
	}
	if l2wgBin != "" {
		b.L2WG, err = filepath.Abs(l2wgBin)
		return b, err
	}
	b.L2WG, b.L2WGFromTree = filepath.Join(dir, "l2wg"), true
	_, err = goIn(ctx, root, "build", "-o", b.L2WG, "./cmd/l2wg")
	return b, err
}

// machine describes where and with what a run happened.
type machine struct {
	CPUs        int
	CPUModel    string
	Kernel      string
	GoVersion   string
	WireguardGo string
	L2WG        string // l2wg version and the repository's commit
	Tools       []string
	Date        time.Time
}

// describeMachine collects the facts of the report's header.
func describeMachine(ctx context.Context, root string, b binaries, withFastd bool) machine {
	m := machine{
		CPUs:        runtime.NumCPU(),
		CPUModel:    cpuModel(),
		Kernel:      firstLine(readFile("/proc/sys/kernel/osrelease")),
		WireguardGo: b.WireguardGoVersion,
		Date:        time.Now().UTC(),
	}
	m.GoVersion, _ = goIn(ctx, root, "env", "GOVERSION")
	version, _ := tool(ctx, "", b.L2WG, "version")
	m.L2WG = firstLine(version) + ", binary " + b.L2WG
	if b.L2WGFromTree {
		commit, _ := tool(ctx, "", "git", "-C", root, "describe", "--always", "--dirty")
		m.L2WG = "built from the work tree at " + commit
	}
	if b.L2WGB != "" {
		version, _ := tool(ctx, "", b.L2WGB, "version")
		m.L2WG += "; l2wg-b: " + firstLine(version) + ", binary " + b.L2WGB
	}
	versions := [][]string{{"iperf3", "--version"}, {"tincd", "--version"}}
	if withFastd {
		versions = append(versions, []string{"fastd", "--version"})
	}
	for _, argv := range versions {
		out, _ := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		m.Tools = append(m.Tools, firstLine(string(out)))
	}
	return m
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	for line := range strings.Lines(readFile("/proc/cpuinfo")) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}
