package netns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultBase is the namespace name prefix used when New is given none.
const DefaultBase = "l2wgt"

// runDir is where ip-netns(8) keeps the bind mounts that name namespaces.
const runDir = "/run/netns"

// labSeq numbers the labs of one process, so that parallel labs differ.
var labSeq atomic.Uint32

// addMu serializes ip netns add within the process: the first one makes
// /run/netns a shared mount point, and two doing that at once stack mounts.
var addMu sync.Mutex

// A Lab is a set of network namespaces, and the processes and sockets in them,
// that are created together and removed together by Close.
type Lab struct {
	prefix string
	dir    string

	mu      sync.Mutex // protects the fields below
	nss     []string   // short names, in creation order
	procs   []*Proc
	closers []io.Closer
	closed  bool
}

// New returns an empty lab whose namespaces are named
// base + <pid> + "-" + <sequence> + "-" + <short name>. An empty base means
// DefaultBase. Logs of started processes go to dir (for example t.TempDir()).
//
// The pid in the name lets CleanupStale tell a crashed run's namespaces from
// those of a run that is still alive.
func New(base, dir string) (*Lab, error) {
	if base == "" {
		base = DefaultBase
	}
	if strings.ContainsAny(base, "/-") || strings.ContainsAny(base[len(base)-1:], "0123456789") {
		return nil, fmt.Errorf("new lab: base %q: must not contain '/' or '-' nor end with a digit", base)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("new lab: %w", err)
	}
	return &Lab{
		prefix: fmt.Sprintf("%s%d-%d-", base, os.Getpid(), labSeq.Add(1)),
		dir:    dir,
	}, nil
}

// Prefix is the prefix of every namespace name of this lab.
func (l *Lab) Prefix() string { return l.prefix }

// Dir is the directory that holds the logs of the lab's processes.
func (l *Lab) Dir() string { return l.dir }

// Name returns the full name of the lab namespace ns, as ip-netns(8) knows it.
func (l *Lab) Name(ns string) string { return l.prefix + ns }

// Path returns the path of the bind mount of the lab namespace ns, which can be
// opened and passed to setns(2).
func (l *Lab) Path(ns string) string { return filepath.Join(runDir, l.Name(ns)) }

// Namespaces returns the short names of the lab's namespaces in creation order.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.nss...)
}

// AddNS creates the namespace ns and brings its loopback up.
func (l *Lab) AddNS(ns string) error {
	if ns == "" || strings.ContainsAny(ns, "/ ") {
		return fmt.Errorf("add netns %q: bad name", ns)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("add netns %q: lab closed", ns)
	}
	for _, n := range l.nss {
		if n == ns {
			l.mu.Unlock()
			return fmt.Errorf("add netns %q: exists", ns)
		}
	}
	l.nss = append(l.nss, ns) // before creating, so Close removes a half-made one
	l.mu.Unlock()

	addMu.Lock()
	_, err := run("ip", "netns", "add", l.Name(ns))
	addMu.Unlock()
	if err != nil {
		return fmt.Errorf("add netns %q: %w", ns, err)
	}
	return l.Up(ns, "lo")
}

// hasNS reports whether ns is one of the lab's namespaces.
func (l *Lab) hasNS(ns string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.nss {
		if n == ns {
			return true
		}
	}
	return false
}

// track registers c to be closed by Close. It reports false, and closes c at
// once, when the lab is already closed.
func (l *Lab) track(c io.Closer) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return false
	}
	l.closers = append(l.closers, c)
	return true
}

// Close removes the lab: it stops every process that Start started (SIGTERM,
// then SIGKILL after the process's StopTimeout), closes the sockets opened
// through the lab, kills any process still left inside a lab namespace and
// deletes the namespaces, which removes the links inside them. Close is safe to
// call more than once; it returns the errors it met, joined.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, closers, nss := l.procs, l.closers, l.nss
	l.mu.Unlock()

	var errs []error
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Stop() // its exit status is the test's business, not Close's
		}()
	}
	wg.Wait()
	for _, c := range closers {
		c.Close()
	}
	for i := len(nss) - 1; i >= 0; i-- {
		if err := deleteNS(l.Name(nss[i])); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteNS kills what still runs inside the namespace called name and deletes
// it. A namespace that does not exist is not an error.
func deleteNS(name string) error {
	if _, err := os.Stat(filepath.Join(runDir, name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var killed []int
	if out, err := run("ip", "netns", "pids", name); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
				killed = append(killed, pid)
			}
		}
	}
	// A killed process runs on until the kernel has torn it down: wait
	// (a little) until each is gone or a zombie, so that a namespace
	// deleted is one whose processes have ended.
	for _, pid := range killed {
		for end := time.Now().Add(2 * time.Second); running(pid) && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	var err error
	for range 10 { // a namespace can be briefly busy while its last process dies
		if _, err = run("ip", "netns", "delete", name); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("delete netns %q: %w", name, err)
}

// running reports whether process pid exists and is not a zombie.
func running(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i >= 0 && i+2 < len(data) && data[i+2] != 'Z'
}

// CleanupStale deletes the namespaces named base + <pid> + "-" ... (the names
// New gives) whose <pid> is no longer a running process, killing what is still
// running inside them: the leftovers of a lab whose process crashed or was
// killed before Close. Labs of live processes, this one included, are left
// alone. An empty base means DefaultBase. It returns the names it deleted.
func CleanupStale(base string) ([]string, error) {
	if base == "" {
		base = DefaultBase
	}
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cleanup stale netns: %w", err)
	}
	var deleted []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		pid, ok := ownerPID(name, base)
		if !ok || processAlive(pid) {
			continue
		}
		if err := deleteNS(name); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, name)
	}
	return deleted, errors.Join(errs...)
}

// ownerPID parses the pid out of a namespace name made by New with base.
func ownerPID(name, base string) (int, bool) {
	rest, ok := strings.CutPrefix(name, base)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
