package lab

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/wgsock"
)

// Options say how to build a lab.
type Options struct {
	// L2WG is the l2wg binary that runs on every site and as the relay.
	L2WG string
	// SiteL2WG overrides L2WG for the l2wg up of some sites, by site name:
	// a mixed-architecture lab (a 386 build, or a script that runs an arm
	// build under qemu-user). The lab's own l2wg show and relay stay L2WG.
	SiteL2WG map[string]string
	// StateRoot holds the lab's directory; DefaultStateRoot when empty.
	StateRoot string
	// Name is the lab's name, in its directory and namespace names; the
	// topology's name when empty.
	Name string
	// Seed seeds the relay's impairments; when nil the topology's seed, or
	// a random one. It is in the report, so a run can be replayed.
	Seed *int64
	// Detach makes a lab that outlives the process that builds it (lab up):
	// its processes get their own session and no death signal.
	Detach bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Hold builds everything but starts no l2wg: StartAll starts them (a
	// measurement that must watch from before the first handshake).
	Hold bool
}

// A Lab is a built (or attached) lab: its plan, its namespaces, and the
// processes it runs. Methods that change it update its state file, so other
// invocations of l2wg lab see the change.
type Lab struct {
	Name string
	Dir  string // state directory
	Plan *Plan
	NS   *netns.Lab
	Seed int64
	// STP is true when the sites run a spanning tree: the binary has one and
	// the topology does not turn it off. NoSTP is true when the binary has
	// none (it rejects [stp]).
	STP   bool
	NoSTP bool
	// Show is true when the binary has l2wg show.
	Show bool

	l2wg     string
	siteL2WG map[string]string // Options.SiteL2WG
	log      io.Writer
	keys     map[string]keyPair

	mu    sync.Mutex             // protects procs
	procs map[string]*netns.Proc // started by this process: "relay", "l2wg hv1"
}

// SkipError says why a topology cannot run with this l2wg: a lab run that
// meets it reports the run as skipped, not failed.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// logf prints a progress line.
func (l *Lab) logf(format string, args ...any) {
	if l.log != nil {
		fmt.Fprintf(l.log, format+"\n", args...)
	}
}

// siteDir is where site n's config, key and log live.
func (l *Lab) siteDir(n string) string { return filepath.Join(l.Dir, n) }

// ConfPath is the node.toml of site n.
func (l *Lab) ConfPath(n string) string { return filepath.Join(l.siteDir(n), "node.toml") }

// LogPath is the l2wg log of site n.
func (l *Lab) LogPath(n string) string { return filepath.Join(l.siteDir(n), "l2wg.log") }

func randomSeed() int64 {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:]) >> 1)
}

// Down removes the lab: it stops its processes, deletes its namespaces
// (which removes every link, TAP and bridge in them) and its directory.
func (l *Lab) Down() error {
	l.mu.Lock()
	procs := l.procs
	l.procs = map[string]*netns.Proc{}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
	var errs []error
	if l.NS != nil {
		removeStaleWGSockets(nsPrefix(l.Name))
		errs = append(errs, l.NS.Close())
	}
	errs = append(errs, downDir(l.Dir, nsPrefix(l.Name)))
	return errors.Join(errs...)
}

// downDir removes a lab by its directory and namespace prefix, whatever
// state it is in: it ends the processes recorded in its state that are
// still the lab's, deletes every namespace with the prefix (killing what
// runs inside), and removes the directory.
func downDir(dir, prefix string) error {
	var errs []error
	if st, err := readState(dir); err == nil {
		var recs []*procRecord
		for _, r := range st.Procs {
			recs = append(recs, r)
		}
		stopRecorded(dir, recs, 5*time.Second)
	}
	removeStaleWGSockets(prefix)
	if _, err := netns.DeletePrefix(prefix); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Attach opens the running lab called name under root (DefaultStateRoot when
// empty), as made by another invocation.
func Attach(root, name string) (*Lab, error) {
	l, _, err := attach(root, name)
	return l, err
}

func attach(root, name string) (*Lab, *state, error) {
	if root == "" {
		root = DefaultStateRoot
	}
	dir := filepath.Join(root, name)
	st, err := readState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("no lab %s (no %s)", name, statePath(dir))
		}
		return nil, nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "topology.toml"))
	if err != nil {
		return nil, nil, fmt.Errorf("lab %s: %w", name, err)
	}
	t, err := Parse(st.Source, data)
	if err != nil {
		return nil, nil, err
	}
	if t.Name == "" {
		t.Name = st.Topology
	}
	plan, err := MakePlan(t)
	if err != nil {
		return nil, nil, err
	}
	ns, err := netns.NewNamed(st.Prefix, filepath.Join(dir, "logs"))
	if err != nil {
		return nil, nil, err
	}
	for _, n := range st.Namespaces {
		if err := ns.Adopt(n); err != nil {
			return nil, nil, fmt.Errorf("lab %s: %w (a half-built or half-removed lab: l2wg lab down -n %s)", name, err, name)
		}
	}
	l := &Lab{
		Name: name, Dir: dir, Plan: plan, NS: ns, Seed: st.Seed, STP: st.STP, Show: st.Show,
		l2wg: st.L2WG, siteL2WG: st.SiteL2WG, procs: make(map[string]*netns.Proc),
	}
	return l, st, nil
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// removeStaleWGSockets removes the wg(8) sockets of the lab's l2wg that died
// without removing them (a crashed lab run takes its l2wg down with SIGKILL):
// they are named after the namespaces, so this must run before those go.
func removeStaleWGSockets(prefix string) {
	names, err := netns.ListPrefix(prefix)
	if err != nil {
		return
	}
	for _, name := range names {
		wgsock.RemoveStale(tapName, name, filepath.Join("/run/netns", name))
	}
}
