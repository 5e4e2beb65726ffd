package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The control socket of a running l2wg is an abstract unix socket named
// "@l2wg/<tap>". Abstract sockets belong to a network namespace, as the TAP
// does, so several l2wg in several namespaces (a lab, a test) never collide
// and a crashed l2wg leaves no file behind. Abstract sockets have no file
// permissions: the server checks that the client runs as root or as its own
// user (SO_PEERCRED).
const controlPrefix = "@l2wg/"

var pid = os.Getpid()

func controlAddr(tap string) string { return controlPrefix + tap }

// listenControl opens the node's control socket; if another l2wg holds it,
// that l2wg runs for the same TAP in this namespace: an error.
func listenControl(tap string) (net.Listener, error) {
	l, err := net.Listen("unix", controlAddr(tap))
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			return nil, fmt.Errorf("control socket %s: another l2wg is running for tap %q in this network namespace", controlAddr(tap), tap)
		}
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return l, nil
}

// routineServeControl answers one request per connection: a line naming
// the request ("status" or "fdb"), answered with JSON.
func (n *node) routineServeControl(l net.Listener) {
	defer n.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return // closed by n.close
		}
		go n.serveControl(c)
	}
}

// peerAllowed reports whether the client of c is root or our own user.
func peerAllowed(c net.Conn) bool {
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

func (n *node) serveControl(c net.Conn) {
	defer c.Close()
	if !peerAllowed(c) {
		return
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	if arg, ok := strings.CutPrefix(strings.TrimSpace(line), "capture "); ok {
		n.serveCapture(c, arg) // streams frames until its bound (capture.go)
		return
	}
	enc := json.NewEncoder(c)
	switch strings.TrimSpace(line) {
	case "status":
		enc.Encode(n.status(false))
	case "fdb":
		enc.Encode(n.status(true))
	case "reload":
		enc.Encode(n.reloadAndLog())
	default:
		enc.Encode(map[string]string{"error": "unknown request"})
	}
}

// queryControl asks a running l2wg for its status.
func queryControl(addr, request string) (showStatus, error) {
	var st showStatus
	c, err := net.DialTimeout("unix", addr, 2*time.Second)
	if err != nil {
		return st, fmt.Errorf("no l2wg answers at %s in this network namespace: %w", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, request); err != nil {
		return st, fmt.Errorf("query l2wg: %w", err)
	}
	if err := json.NewDecoder(c).Decode(&st); err != nil {
		return st, fmt.Errorf("read l2wg's answer (are you root?): %w", err)
	}
	return st, nil
}

// findControl picks the control socket: of the named TAP, or the only one
// in this network namespace (listed in /proc/net/unix).
func findControl(tap string) (string, error) {
	if tap != "" {
		return controlAddr(tap), nil
	}
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return "", fmt.Errorf("find l2wg: %w", err)
	}
	var names []string
	seen := make(map[string]bool)
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 8 || !strings.HasPrefix(f[len(f)-1], controlPrefix) {
			continue
		}
		name := strings.TrimPrefix(f[len(f)-1], controlPrefix)
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("no l2wg is running in this network namespace")
	case 1:
		return controlAddr(names[0]), nil
	default:
		return "", fmt.Errorf("several l2wg are running (%s): name one with -i", strings.Join(names, ", "))
	}
}
