package tunnel

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/device"
)

// wireguard-go's verbose lines for a decrypted packet whose inner source
// address is not among the sending peer's allowed IPs: for l2wg, a peer
// that sends under another peer's label. wireguard-go drops the packet
// before l2wg sees it; the logger is where it can be counted.
const (
	disallowedSource4 = "IPv4 packet with disallowed source address from %v"
	disallowedSource6 = "IPv6 packet with disallowed source address from %v"
)

// wgLogger adapts wireguard-go's printf logger to slog: its verbose lines go
// to debug (formatted only when debug is enabled), its errors to error. It
// counts the packets wireguard-go drops for a disallowed source address in
// disallowed.
func wgLogger(log *slog.Logger, disallowed *atomic.Uint64) *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) {
			if format == disallowedSource4 || format == disallowedSource6 {
				disallowed.Add(1)
			}
			if log.Enabled(context.Background(), slog.LevelDebug) {
				log.Debug(fmt.Sprintf(format, args...), "component", "wireguard")
			}
		},
		Errorf: func(format string, args ...any) {
			log.Error(fmt.Sprintf(format, args...), "component", "wireguard")
		},
	}
}
