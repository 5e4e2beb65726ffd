// Package uapi serves wg(8)'s UAPI socket for a running l2wg (read-only:
// see tunnel.ServeUAPI).
package uapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/wgsock"
)

// wg(8) finds userspace WireGuard devices by their UAPI socket,
// /var/run/wireguard/<name>.sock, as wireguard-go creates it. l2wg serves
// the same protocol there (read-only: see tunnel.ServeUAPI), so `wg show`,
// `wg showconf` and the monitoring built on them work unchanged.
//
// /var/run is a directory, shared by every network namespace of the host,
// while the TAP name is only unique inside one namespace. So that two l2wg in
// two namespaces never answer for each other, the socket's name says which
// namespace it serves when that is not the host's own:
//
//   - in the initial network namespace: <tap>, e.g. l2wg0 (wg show l2wg0);
//   - in a namespace named by ip netns: <tap>@<netns>, e.g. l2wg0@vpn, if that
//     fits wg's 15-byte limit for interface names;
//   - otherwise: <tap>@net<N>, e.g. l2wg0@net412, N being the namespace's
//     inode (ls -L -i /proc/<pid>/ns/net) minus 4026531840 (0xF0000000, the
//     first inode the kernel gives to namespaces after the initial ones).
//
// l2wg logs the name it serves at start, and `wg show interfaces` lists it.
// A name already served by a live process (another l2wg, or a wireguard-go
// of that name) is never taken over: l2wg falls back to <tap>@net<N>,
// and if that is taken too it serves no UAPI socket and logs a warning. A
// stale socket (nobody answers) is replaced. On shutdown l2wg removes its
// socket, and only its own.

// connTimeout bounds one wg(8) exchange; wg connects, asks once, closes.
const connTimeout = 10 * time.Second

// errInUse says a live process already serves a UAPI socket name.
var errInUse = errors.New("in use by a running process")

// CurrentNetns identifies this process's network namespace: by its name
// under /run/netns (as ip netns identify does), and by comparison with pid
// 1's. A named namespace is not the initial one unless pid 1's says it is;
// an unnamed one whose pid 1 cannot be read (no permission, as in some
// sandboxes) counts as the initial one.
func CurrentNetns() (wgsock.Netns, error) {
	var self syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &self); err != nil {
		return wgsock.Netns{Initial: true}, fmt.Errorf("identify network namespace: %w", err)
	}
	id := wgsock.Netns{Inode: self.Ino}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/run/netns", e.Name()), &st) == nil && st.Dev == self.Dev && st.Ino == self.Ino {
			id.Name = e.Name()
			break
		}
	}
	var init syscall.Stat_t
	if err := syscall.Stat("/proc/1/ns/net", &init); err == nil {
		id.Initial = init.Dev == self.Dev && init.Ino == self.Ino
	} else {
		id.Initial = id.Name == ""
	}
	if id.Initial {
		id.Name = ""
	}
	return id, nil
}

// Server serves wg(8) on one UAPI socket.
type Server struct {
	log  *slog.Logger
	dev  Device
	name string
	path string
	ln   *net.UnixListener
	file syscall.Stat_t // the socket file we made, to remove only ours

	mu    sync.Mutex // protects conns
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Device is what wg(8) talks to (a *tunnel.Tunnel).
type Device interface {
	ServeUAPI(rw io.ReadWriter, refused func(keys []string)) error
}

// Start opens the UAPI socket of tap, if it can, and serves wg(8) on it. It
// never fails the node: without a socket only wg(8) cannot see l2wg (nil).
func Start(tap string, dev Device, log *slog.Logger) *Server {
	ns, err := CurrentNetns()
	if err != nil {
		log.Warn("wireguard uapi: cannot tell the network namespace; assuming the host's", "err", err)
	}
	names := wgsock.Names(tap, ns)
	u, err := listen(names, log)
	if err != nil {
		log.Warn("wireguard uapi: no socket, wg show will not see this l2wg", "names", strings.Join(names, ", "), "dir", wgsock.Dir, "err", err)
		return nil
	}
	u.dev = dev
	log.Info("wireguard uapi: wg show "+u.name+" works (wg set is refused: change node.toml and run l2wg reload)", "socket", u.path)
	u.wg.Add(1)
	go u.routineAccept()
	return u
}

// listen binds the first name of names that no live process serves.
func listen(names []string, log *slog.Logger) (*Server, error) {
	if len(names) == 0 {
		return nil, errors.New("no usable socket name")
	}
	if err := os.MkdirAll(wgsock.Dir, 0o755); err != nil {
		return nil, err
	}
	var errs []error
	for i, name := range names {
		path := wgsock.Path(name)
		ln, err := bindUnix(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		u := &Server{log: log, name: name, path: path, ln: ln, conns: make(map[net.Conn]struct{})}
		if err := syscall.Stat(path, &u.file); err != nil {
			ln.Close()
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		if i > 0 {
			log.Warn("wireguard uapi: preferred socket name taken, using another", "taken", errors.Join(errs...), "name", name)
		}
		return u, nil
	}
	return nil, errors.Join(errs...)
}

// bindUnix listens on a unix socket at path, mode 0600. A socket file that no
// process answers is stale and replaced; one that answers is errInUse.
func bindUnix(path string) (*net.UnixListener, error) {
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	ln, err := net.ListenUnix("unix", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, errInUse
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
		ln, err = net.ListenUnix("unix", addr)
	}
	if err != nil {
		return nil, err
	}
	// Go would unlink the path on Close even if another process had replaced
	// the file meanwhile; close removes it only if it is still ours.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, err
	}
	return ln, nil
}

// routineAccept serves each wg(8) connection on its own goroutine.
func (u *Server) routineAccept() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return // closed by close
		}
		u.mu.Lock()
		if u.conns == nil { // closing
			u.mu.Unlock()
			c.Close()
			return
		}
		u.conns[c] = struct{}{}
		u.wg.Add(1)
		u.mu.Unlock()
		go u.serve(c)
	}
}

func (u *Server) serve(c net.Conn) {
	defer u.wg.Done()
	defer func() {
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
		c.Close()
	}()
	if !control.PeerAllowed(c) {
		return
	}
	c.SetDeadline(time.Now().Add(connTimeout))
	err := u.dev.ServeUAPI(c, func(keys []string) {
		u.log.Warn("wg set refused: change node.toml and run l2wg reload", "socket", u.path, "keys", strings.Join(keys, ","))
	})
	if err != nil {
		u.log.Debug("wireguard uapi: exchange ended", "err", err)
	}
}

// Close closes the socket, ends the exchanges under way and removes the
// socket file if it is still ours. A nil Server does nothing.
func (u *Server) Close() {
	if u == nil {
		return
	}
	u.ln.Close()
	u.mu.Lock()
	for c := range u.conns {
		c.Close()
	}
	u.conns = nil
	u.mu.Unlock()
	u.wg.Wait()
	var st syscall.Stat_t
	if syscall.Stat(u.path, &st) == nil && st.Dev == u.file.Dev && st.Ino == u.file.Ino {
		os.Remove(u.path)
	}
}
