package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
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
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
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
	// L2WG_TRACE=file writes a runtime execution trace of the whole run (go
	// tool trace: every goroutine wake and syscall); "%p" is the PID.
	if path := strings.ReplaceAll(os.Getenv("L2WG_TRACE"), "%p", strconv.Itoa(os.Getpid())); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("up: trace: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return fmt.Errorf("up: trace: %w", err)
		}
		defer trace.Stop()
	}
	// L2WG_MEMPROFILE=file writes a heap profile on SIGUSR1 and on shutdown
	// (go tool pprof -sample_index=inuse_space); "%p" in the name is the PID.
	memProfile := strings.ReplaceAll(os.Getenv("L2WG_MEMPROFILE"), "%p", strconv.Itoa(os.Getpid()))
	if memProfile != "" {
		defer writeHeapProfile(memProfile, log)
	}
	// A soft memory limit at the sum of the tunnel's memory bounds: without
	// it the garbage collector lets the heap grow to twice the live set.
	// GOMEMLIMIT in the environment wins.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(tunnel.MemoryLimit(cfg.ReassemblyTotalBytes))
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
			if sig == syscall.SIGUSR1 {
				if memProfile != "" {
					writeHeapProfile(memProfile, log)
				}
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

// writeHeapProfile writes the heap profile (after a collection, so it shows
// the live set) to path, replacing the file atomically.
func writeHeapProfile(path string, log *slog.Logger) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err == nil {
		runtime.GC()
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		log.Warn("heap profile", "file", path, "err", err)
		return
	}
	log.Info("wrote heap profile", "file", path)
}
