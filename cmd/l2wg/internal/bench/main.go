// Command bench measures l2wg side by side with the recipes it replaces, on
// the same network-namespace topology and in the same invocation:
// wireguard-go in L3 TUN mode (the transport's own ceiling), wireguard-go
// with kernel VXLAN in the VM bridges, tinc 1.0 in switch mode, optionally
// fastd in TAP mode, and l2wg. Repetitions are interleaved (each contestant
// once, then again), so drift on a shared machine hits all of them alike.
//
// It writes a Markdown table to -out and prints it. Run it as root from the
// repository:
//
//	go run ./cmd/l2wg/internal/bench [-reps 3] [-time 10] [-quick] [-fastd] [-l2wg bin/l2wg]
//
// Missing tools (iperf3, wg, tinc, fastd) are installed with apt-get.
// Everything the run makes (namespaces, processes, binaries, keys) is removed
// at the end, also on failure or SIGINT.
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// options are the command-line flags.
type options struct {
	Reps      int
	Seconds   int
	Quick     bool
	Out       string
	L2WG      string
	Fastd     bool
	Only      string
	UDPRate   string
	IdlePings int
	Keep      bool
	Protocol  string // l2wg's [mesh] protocol; "": its default
	RTTOnly   bool   // only the idle round-trip test
	L2WGB     string // a second l2wg binary, measured beside the first
	IdleGap   time.Duration
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.Reps, "reps", 3, "repetitions of every contestant")
	fs.IntVar(&o.Seconds, "time", 10, "seconds per iperf3 test")
	fs.BoolVar(&o.Quick, "quick", false, "one repetition of 3-second tests, for iterating")
	fs.StringVar(&o.Out, "out", "bench-results.md", "Markdown file the table is written to")
	fs.StringVar(&o.L2WG, "l2wg", "", "l2wg binary (default: go build ./cmd/l2wg)")
	fs.BoolVar(&o.Fastd, "fastd", false, "also measure fastd in TAP mode")
	fs.StringVar(&o.Only, "only", "", "comma-separated contestants to run: wg, vxlan, tinc, fastd, l2wg (default all)")
	fs.StringVar(&o.UDPRate, "udp-rate", "0", "offered rate of the UDP tests (iperf3 -b; 0: as fast as the sender can)")
	fs.IntVar(&o.IdlePings, "pings", 300, "echo requests of the idle latency run")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory (logs, configs) for debugging")
	fs.StringVar(&o.Protocol, "protocol", "", "l2wg's [mesh] protocol (spanning-tree, shortest-path, ...; default: l2wg's default)")
	fs.BoolVar(&o.RTTOnly, "rtt", false, "only the idle round-trip test (seconds per contestant, for iterating on latency)")
	fs.StringVar(&o.L2WGB, "l2wg-b", "", "a second l2wg binary, measured as \"l2wg-b\" right after the first in every repetition")
	fs.DurationVar(&o.IdleGap, "ping-interval", pingInterval, "gap between the echo requests of the idle latency run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.Quick {
		o.Reps, o.Seconds, o.IdlePings = 1, 3, 100
	}
	if o.Reps < 1 || o.Seconds < 2 || o.IdlePings < 1 || o.IdleGap < time.Millisecond {
		return o, fmt.Errorf("-reps must be at least 1, -time at least 2, -pings at least 1, -ping-interval at least 1ms")
	}
	return o, nil
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, log, o, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// run is the whole benchmark; its deferred cleanups run before main exits.
func run(ctx context.Context, log *slog.Logger, o options, args []string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root (network namespaces)")
	}
	if stale, err := netns.CleanupStale(labBase); err != nil {
		log.Warn("remove stale namespaces", "err", err)
	} else if len(stale) > 0 {
		log.Info("removed stale namespaces", "names", strings.Join(stale, " "))
	}
	if err := installTools(ctx, log, requiredTools(o.Fastd || strings.Contains(o.Only, "fastd"))); err != nil {
		return err
	}
	root, err := repoRoot(ctx)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "l2wg-bench-")
	if err != nil {
		return err
	}
	if o.Keep {
		log.Info("keeping work directory", "dir", work)
	} else {
		defer os.RemoveAll(work)
	}

	log.Info("building", "wireguard-go", wireguardModule, "l2wg", cmp.Or(o.L2WG, "./cmd/l2wg"))
	bins, err := buildBinaries(ctx, root, work, o.L2WG)
	if err != nil {
		return err
	}
	if o.L2WGB != "" {
		if bins.L2WGB, err = filepath.Abs(o.L2WGB); err != nil {
			return err
		}
	}
	contestants, err := selectContestants(bins, o)
	if err != nil {
		return err
	}
	p := params{Seconds: o.Seconds, UDPRate: o.UDPRate, IdlePings: o.IdlePings, IdleSeconds: 10,
		IdleInterval: o.IdleGap, RTTOnly: o.RTTOnly}
	if o.Quick {
		p.IdleSeconds = 5
	}
	res := &results{Contestants: contestants}
	for rep := range o.Reps {
		row := make([]*sample, len(contestants))
		for i, c := range contestants {
			log.Info("measuring", "rep", rep+1, "of", o.Reps, "contestant", c.Name())
			dir := filepath.Join(work, fmt.Sprintf("rep%d-%s", rep+1, c.Key()))
			s := measure(ctx, log, p, c, dir)
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("interrupted: %w", err)
			}
			logSample(log, c, s)
			row[i] = s
			settle(ctx)
		}
		res.Samples = append(res.Samples, row)
	}

	rp := &report{
		Machine: describeMachine(ctx, root, bins, o.Fastd),
		Command: commandLine(args),
		Params:  p,
		Results: res,
	}
	var buf bytes.Buffer
	rp.write(&buf)
	if err := os.WriteFile(o.Out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Print(buf.String())
	log.Info("wrote report", "file", o.Out)
	return nil
}

// selectContestants returns the contestants in the order each repetition
// runs them, narrowed by -only.
func selectContestants(b binaries, o options) ([]contestant, error) {
	all := []contestant{wireguardGoL3{b.WireguardGo}, wireguardGoVXLAN{b.WireguardGo}, tinc{}}
	if o.Fastd || strings.Contains(o.Only, "fastd") {
		all = append(all, fastd{})
	}
	all = append(all, l2wg{bin: b.L2WG, protocol: o.Protocol})
	if b.L2WGB != "" {
		all = append(all, l2wg{bin: b.L2WGB, protocol: o.Protocol, b: true})
	}
	if o.Only == "" {
		return all, nil
	}
	keys := strings.Split(o.Only, ",")
	for i, k := range keys {
		keys[i] = strings.TrimSpace(k)
		if !slices.ContainsFunc(all, func(c contestant) bool { return c.Key() == keys[i] }) {
			return nil, fmt.Errorf("-only: unknown contestant %q (wg, vxlan, tinc, fastd, l2wg, l2wg-b)", keys[i])
		}
	}
	var out []contestant // in the order above, whatever the order of -only
	for _, c := range all {
		if slices.Contains(keys, c.Key()) {
			out = append(out, c)
		}
	}
	return out, nil
}

// settle gives the kernel a moment to tear down the last lab's namespaces
// (which it does in the background) before the next contestant is measured.
func settle(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
	}
}

// logSample prints a one-line summary of a sample.
func logSample(log *slog.Logger, c contestant, s *sample) {
	if s.Err != nil {
		log.Warn("failed", "contestant", c.Name(), "err", s.Err)
		return
	}
	for _, p := range s.Problems {
		log.Warn("test failed", "contestant", c.Name(), "problem", p)
	}
	v := s.Values
	log.Info("measured", "contestant", c.Name(),
		"tcp1_mbps", fmt.Sprintf("%.0f", v[mTCP1]), "tcp4_mbps", fmt.Sprintf("%.0f", v[mTCP4]),
		"udp_mbps", fmt.Sprintf("%.0f", v[mUDP]), "udp_loss_pct", fmt.Sprintf("%.1f", v[mUDPLoss]),
		"kpps_64", fmt.Sprintf("%.1f", v[mPPS64]), "kpps_512", fmt.Sprintf("%.1f", v[mPPS512]),
		"rtt_idle_ms", fmt.Sprintf("%.3f/%.3f", v[mRTTIdleMean], v[mRTTIdleP99]),
		"rtt_idle_p10_p50_p90_ms", fmt.Sprintf("%.3f/%.3f/%.3f", v[mRTTIdleP10], v[mRTTIdleP50], v[mRTTIdleP90]),
		"rtt_load_ms", fmt.Sprintf("%.3f/%.3f", v[mRTTLoadMean], v[mRTTLoadP99]),
		"cpu_s_per_gb", fmt.Sprintf("%.2f", v[mCPUPerGB]), "rss_mb", fmt.Sprintf("%.1f/%.1f", v[mRSSTCP], v[mRSSAll]),
		"rss_idle50_mb", fmt.Sprintf("%.1f", v[mRSSIdle50]), "first_frame_s", fmt.Sprintf("%.1f", v[mFirstFrame]))
}

// commandLine is the command that reproduces this run, from the repository.
func commandLine(args []string) string {
	parts := []string{"go", "run", "./cmd/l2wg/internal/bench"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
