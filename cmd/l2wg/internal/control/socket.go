// Package control is the control socket of a running l2wg: the server, the
// client and the JSON they exchange (the contract of `l2wg show --json`,
// which the lab reads too).
//
// The socket is an abstract unix socket named "@l2wg/<tap>". Abstract
// sockets belong to a network namespace, as the TAP does, so several l2wg
// in several namespaces (a lab, a test) never collide and a crashed l2wg
// leaves no file behind. Abstract sockets have no file permissions: the
// server checks that the client runs as root or as its own user
// (SO_PEERCRED).
//
// A request is one line: "status", "fdb", "reload", or "capture <json>"
// (see package capture); the answer is JSON (a capture streams).
package control

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every l2wg control socket.
const Prefix = "@l2wg/"

// Addr is the control socket of the l2wg that runs tap.
func Addr(tap string) string { return Prefix + tap }

// Listen opens the control socket of tap; if another l2wg holds it, that
// l2wg runs for the same TAP in this namespace: an error.
func Listen(tap string) (net.Listener, error) {
	l, err := net.Listen("unix", Addr(tap))
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			return nil, fmt.Errorf("control socket %s: another l2wg is running for tap %q in this network namespace", Addr(tap), tap)
		}
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return l, nil
}

// PeerAllowed reports whether the client of c is root or our own user.
func PeerAllowed(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	return err == nil && cred != nil && (cred.Uid == 0 || int(cred.Uid) == os.Geteuid())
}

// Find picks the control socket: of the named TAP, or the only one in this
// network namespace (listed in /proc/net/unix).
func Find(tap string) (string, error) {
	if tap != "" {
		return Addr(tap), nil
	}
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return "", fmt.Errorf("find l2wg: %w", err)
	}
	var names []string
	seen := make(map[string]bool)
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 8 || !strings.HasPrefix(f[len(f)-1], Prefix) {
			continue
		}
		name := strings.TrimPrefix(f[len(f)-1], Prefix)
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("no l2wg is running in this network namespace")
	case 1:
		return Addr(names[0]), nil
	default:
		return "", fmt.Errorf("several l2wg are running (%s): name one with -i", strings.Join(names, ", "))
	}
}
