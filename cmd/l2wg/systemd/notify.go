// Package systemd tells systemd how l2wg is doing, over the sd_notify
// protocol: one datagram of "KEY=value" lines to the unix socket named by
// $NOTIFY_SOCKET. It is the few lines of sd_notify(3) that l2wg needs, not a
// dependency. The unit l2wg@.service in this directory runs l2wg with
// Type=notify.
package systemd

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// Notify sends state, for example "READY=1" or "STOPPING=1", to the service
// manager. Without $NOTIFY_SOCKET (l2wg not started by systemd, or by a unit
// that is not Type=notify) it does nothing and reports false.
func Notify(state string) (sent bool, err error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	// A leading '@' names an abstract socket; Go's net package maps it.
	if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
		return false, fmt.Errorf("sd_notify: NOTIFY_SOCKET %q: not a unix socket path", addr)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}
