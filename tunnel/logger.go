package tunnel

import (
	"context"
	"fmt"
	"log/slog"

	"golang.zx2c4.com/wireguard/device"
)

// wgLogger adapts wireguard-go's printf logger to slog: its verbose lines go
// to debug (formatted only when debug is enabled), its errors to error.
func wgLogger(log *slog.Logger) *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) {
			if log.Enabled(context.Background(), slog.LevelDebug) {
				log.Debug(fmt.Sprintf(format, args...), "component", "wireguard")
			}
		},
		Errorf: func(format string, args ...any) {
			log.Error(fmt.Sprintf(format, args...), "component", "wireguard")
		},
	}
}
