package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/node"
	"github.com/l2wg/l2wg/tunnel"
)

// cmdUp runs a node in the foreground until SIGINT or SIGTERM.
func cmdUp(path string, stderr io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.SlogLevel())
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	// L2WG_CPUPROFILE=file writes a CPU profile of the whole run (go tool pprof).
	if path := os.Getenv("L2WG_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("up: cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("up: cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	// A soft memory limit just above what the tunnel's bounded buffers can
	// pin: without it the garbage collector lets the heap grow to twice the
	// live set, and peak RSS doubles. GOMEMLIMIT in the environment wins.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(tunnel.MemoryLimit(0))
	}
	n, err := node.Start(cfg, log, level, version)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	log.Info("l2wg up", n.Summary()...)

	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				n.Reload()
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			n.Close()
			log.Info("l2wg down")
			return nil
		case err := <-n.Fatal():
			n.Close()
			return fmt.Errorf("up: %w", err)
		}
	}
}
