package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// NewNamed returns an empty lab whose namespaces are named prefix + short
// name, with no process id in the name: a lab that may outlive the process
// that built it (l2wg lab up), that another process finds again by its prefix
// (Adopt), and that DeletePrefix removes. CleanupStale never touches it, as
// long as the prefix does not begin with a base that CleanupStale is given.
// Logs of started processes go to dir.
func NewNamed(prefix, dir string) (*Lab, error) {
	if prefix == "" || strings.ContainsAny(prefix, "/ ") {
		return nil, fmt.Errorf("new lab: prefix %q: must be non-empty, without '/' or ' '", prefix)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("new lab: %w", err)
	}
	return &Lab{prefix: prefix, dir: dir}, nil
}

// Adopt makes the existing namespaces prefix + ns (made by an earlier process,
// for example the one that ran l2wg lab up) part of the lab, so that its
// methods work on them and Close deletes them. A namespace that does not
// exist is an error.
func (l *Lab) Adopt(nss ...string) error {
	for _, ns := range nss {
		if _, err := os.Stat(l.Path(ns)); err != nil {
			return fmt.Errorf("adopt netns %q: %w", ns, err)
		}
		l.mu.Lock()
		known := false
		for _, n := range l.nss {
			known = known || n == ns
		}
		if !known {
			l.nss = append(l.nss, ns)
		}
		l.mu.Unlock()
	}
	return nil
}

// StartOptions change how StartWith starts a process.
type StartOptions struct {
	// LogPath is the file that receives the program's stdout and stderr,
	// appended to; empty means a new file in the lab's Dir, as Start does.
	LogPath string
	// Detach lets the process outlive the lab process: it runs in a session
	// of its own, gets no signal when the lab process dies, and Close does
	// not stop it by itself (deleting its namespace still kills it). Use it
	// for labs that stay up after the command that built them has exited.
	Detach bool
}

// StartWith is Start with options: a log file of the caller's choosing, and
// processes that outlive the lab process.
func (l *Lab) StartWith(ns string, opt StartOptions, argv ...string) (*Proc, error) {
	cmd, err := l.command(context.Background(), ns, argv) // never cancelled: Stop, Close or a namespace deletion end it
	if err != nil {
		return nil, err
	}
	if opt.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	var log *os.File
	if opt.LogPath != "" {
		log, err = os.OpenFile(opt.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	} else {
		log, err = os.CreateTemp(l.dir, fmt.Sprintf("%s-%s-*.log", ns, filepath.Base(argv[0])))
	}
	if err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", argv[0], ns, err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s in %s: %w", argv[0], ns, err)
	}
	p := &Proc{
		PID:     cmd.Process.Pid,
		LogPath: log.Name(),
		name:    fmt.Sprintf("%s in %s (pid %d)", filepath.Base(argv[0]), ns, cmd.Process.Pid),
		cmd:     cmd,
		log:     log,
		done:    make(chan struct{}),
	}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	if opt.Detach {
		return p, nil
	}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.procs = append(l.procs, p)
	}
	l.mu.Unlock()
	if closed {
		p.Stop()
		return nil, fmt.Errorf("start %s in %s: lab closed", argv[0], ns)
	}
	return p, nil
}

// ListPrefix returns the names of the existing namespaces that begin with
// prefix, sorted.
func ListPrefix(prefix string) ([]string, error) {
	if prefix == "" {
		return nil, errors.New("list netns: empty prefix")
	}
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// DeletePrefix deletes every namespace whose name begins with prefix, killing
// what still runs inside, whoever made it: the remains of a lab made with
// NewNamed, also after its process crashed. It returns the names it deleted.
func DeletePrefix(prefix string) ([]string, error) {
	names, err := ListPrefix(prefix)
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, name := range names {
		if err := deleteNS(name); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, name)
	}
	return deleted, errors.Join(errs...)
}
