package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// cmdUp runs a node in the foreground until SIGINT or SIGTERM.
func cmdUp(path string, stderr io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

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
	n, err := startNode(cfg, log, level)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	log.Info("l2wg up", n.summary()...)

	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				n.reloadAndLog()
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			n.close()
			log.Info("l2wg down")
			return nil
		case err := <-n.Fatal():
			n.close()
			return fmt.Errorf("up: %w", err)
		}
	}
}

// logLevel maps the config's log_level to slog's (info when empty).
func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); s == "" || err != nil {
		return slog.LevelInfo
	}
	return l
}
