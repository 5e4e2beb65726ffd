// Package wgsock names the wg(8) sockets of l2wg: wireguard-go's UAPI sockets
// in /var/run/wireguard, shared by every network namespace of a host. The
// daemon uses it to pick its socket; the lab and the tests use it to remove
// the sockets of l2wg processes that died without removing their own (killed
// with SIGKILL), which is all that is left of them once their namespace is
// gone.
package wgsock

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dir is where wg(8) looks for userspace interfaces' sockets.
var Dir = "/var/run/wireguard"

// Netns identifies a network namespace.
type Netns struct {
	Initial bool   // the host's own (that of pid 1), or unknown
	Name    string // its name under /run/netns, if it has one
	Inode   uint64
}

// Names lists the socket names l2wg tries for tap in namespace ns, best
// first: the TAP name in the host's namespace, <tap>@<netns> in a named
// one, <tap>@net<N> by inode otherwise. wg set cuts an interface name to 15
// bytes (IFNAMSIZ-1) before it looks for the socket, so names that fit come
// first; a longer one still serves wg show. Names that cannot make a socket
// path are left out.
func Names(tap string, ns Netns) []string {
	var names []string
	if ns.Initial {
		names = append(names, tap)
	} else if ns.Name != "" {
		names = append(names, tap+"@"+ns.Name)
	}
	if ns.Inode != 0 {
		names = append(names, tap+"@"+ShortID(ns.Inode))
	}
	fits := func(name string) bool { return len(name) <= 15 }
	slices.SortStableFunc(names, func(a, b string) int {
		switch {
		case fits(a) && !fits(b):
			return -1
		case fits(b) && !fits(a):
			return 1
		}
		return 0
	})
	var ok []string
	for _, name := range names {
		// sun_path holds 108 bytes with the terminating NUL.
		if !strings.Contains(name, "/") && len(Path(name)) < 108 && !slices.Contains(ok, name) {
			ok = append(ok, name)
		}
	}
	return ok
}

// procDynamicFirst is the kernel's first inode number for namespaces other
// than the initial ones (PROC_DYNAMIC_FIRST).
const procDynamicFirst = 0xF0000000

// ShortID names a namespace by its inode, shortly: "net" and the inode's
// distance from procDynamicFirst (net412 for inode 4026532252), or the whole
// inode number (net4026531833) below it.
func ShortID(inode uint64) string {
	if inode >= procDynamicFirst {
		inode -= procDynamicFirst
	}
	return "net" + strconv.FormatUint(inode, 10)
}

// Path is the socket file of a name.
func Path(name string) string { return filepath.Join(Dir, name+".sock") }

// RemoveStale removes the sockets that an l2wg for tap in the named
// namespace (bind-mounted at nsPath, which must still exist) would have
// made, unless a process answers on them. It returns how many it removed.
func RemoveStale(tap, nsName, nsPath string) int {
	var st syscall.Stat_t
	if err := syscall.Stat(nsPath, &st); err != nil {
		return 0
	}
	removed := 0
	for _, name := range Names(tap, Netns{Name: nsName, Inode: st.Ino}) {
		path := Path(name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			continue
		}
		if os.Remove(path) == nil {
			removed++
		}
	}
	return removed
}
