package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// cmdUp runs a node in the foreground until SIGINT or SIGTERM.
func cmdUp(path string, stderr io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); cfg.LogLevel != "" && err != nil {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	n, err := startNode(cfg, log)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	log.Info("l2wg up", n.summary()...)

	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
		n.close()
		log.Info("l2wg down")
		return nil
	case err := <-n.Fatal():
		n.close()
		return fmt.Errorf("up: %w", err)
	}
}
