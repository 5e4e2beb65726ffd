package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultStopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const DefaultStopTimeout = 10 * time.Second

// command returns an exec.Cmd that runs argv inside the lab namespace ns.
//
// ip netns exec enters the namespace and a private mount namespace (with /sys
// remounted for ns) and then execs argv, so the process's pid is argv's own,
// and signals sent to it reach argv directly. The child is killed if the lab
// process dies first.
func (l *Lab) command(ctx context.Context, ns string, argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("exec in %s: empty command", ns)
	}
	if !l.hasNS(ns) {
		return nil, fmt.Errorf("exec %s in %q: netns not in lab", argv[0], ns)
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.Name(ns)}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// Exec runs argv inside ns, waits for it, and returns its combined stdout and
// stderr. A non-zero exit is an error that names the command and carries the
// output; the output is returned in either case. Exec gives up after two
// minutes; use ExecContext for another bound.
func (l *Lab) Exec(ns string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return l.ExecContext(ctx, ns, argv...)
}

// ExecContext is Exec with a context: the command is killed when ctx is done.
func (l *Lab) ExecContext(ctx context.Context, ns string, argv ...string) ([]byte, error) {
	cmd, err := l.command(ctx, ns, argv)
	if err != nil {
		return nil, err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s in %s: %w: %s", strings.Join(argv, " "), ns, err, lastLines(out, 5))
	}
	return out, nil
}

// lastLines returns the last n lines of out, trimmed, for error messages.
func lastLines(out []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte(" | "))
}

// A Proc is a process started in a lab namespace by Start.
type Proc struct {
	// PID is the process id of the started program.
	PID int
	// LogPath is the file that receives the program's stdout and stderr.
	LogPath string
	// StopTimeout is how long Stop waits after SIGTERM; DefaultStopTimeout
	// when zero.
	StopTimeout time.Duration

	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has been waited for
	err  error         // Wait's result, valid after done

	stopOnce sync.Once
	stopErr  error
}

// Start starts argv inside ns and returns at once. The program's stdout and
// stderr go to a file in the lab's Dir named after ns and the program. The
// lab's Close stops the process if the caller has not.
func (l *Lab) Start(ns string, argv ...string) (*Proc, error) {
	return l.StartWith(ns, StartOptions{}, argv...)
}

// String names the process for messages: "l2wg in hv1 (pid 4711)".
func (p *Proc) String() string { return p.name }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and if so how: a nil error
// means exit status 0, otherwise an *exec.ExitError.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Log returns what the process has written to stdout and stderr so far.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("<read log of %s: %v>", p, err)
	}
	return string(b)
}

// Signal sends sig to the process if it is still running.
func (p *Proc) Signal(sig os.Signal) error {
	if ok, _ := p.Exited(); ok {
		return fmt.Errorf("signal %s: already exited", p)
	}
	return p.cmd.Process.Signal(sig)
}

// ErrKilled is returned by Stop when the process ignored SIGTERM for
// StopTimeout and was killed.
var ErrKilled = errors.New("did not exit after SIGTERM, killed")

// Stop sends SIGTERM and waits for the process to exit, sending SIGKILL after
// StopTimeout. It returns nil only when the process exited by itself with
// status 0; otherwise the *exec.ExitError, or an error wrapping ErrKilled.
// A process that had already exited is not signalled; Stop reports how it
// exited. Calls after the first return the first result.
func (p *Proc) Stop() error {
	p.stopOnce.Do(func() {
		timeout := p.StopTimeout
		if timeout <= 0 {
			timeout = DefaultStopTimeout
		}
		if ok, _ := p.Exited(); !ok {
			// Process.Signal uses a pidfd, so it cannot hit a reused pid.
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-p.done:
			p.stopErr = p.err
		case <-time.After(timeout):
			p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("stop %s: %w after %v", p, ErrKilled, timeout)
		}
	})
	return p.stopErr
}
