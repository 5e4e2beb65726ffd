package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn with the calling OS thread inside the lab namespace ns and
// returns fn's error.
//
// fn runs on a goroutine of its own, locked to its thread, which enters the
// namespace with setns(2) and leaves it afterwards; other goroutines are not
// affected. Sockets fn creates (net.Listen, net.Dial, AF_PACKET sockets) stay
// in ns for their whole life and may be used anywhere after Do returns. fn
// must not call t.FailNow or runtime.Goexit, and must not start goroutines
// that expect to be in ns: new goroutines run on other threads.
//
// Files that belong to a mount (sysfs) still show the lab process's own
// namespace; /proc/sys/net follows the thread and works.
func (l *Lab) Do(ns string, fn func() error) error {
	if !l.hasNS(ns) {
		return fmt.Errorf("enter netns %q: not in lab", ns)
	}
	return DoPath(l.Path(ns), fn)
}

// DoPath is Do for any network namespace file (/run/netns/NAME,
// /proc/PID/ns/net).
func DoPath(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("enter netns: %w", err)
	}
	defer target.Close()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread's own namespace, not the process's: a thread left behind
		// by an earlier failed restore must not be trusted, and tid names this
		// one exactly.
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the runtime ends a thread whose goroutine exits
			// while locked, so this thread never runs anything else.
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", path, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
