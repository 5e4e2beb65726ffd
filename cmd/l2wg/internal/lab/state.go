package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultStateRoot holds one directory per lab: its state file, topology,
// node configs, keys and logs. /run is a tmpfs, cleared at boot like the
// namespaces themselves.
const DefaultStateRoot = "/run/l2wg-lab"

// nsPrefixBase begins the name of every namespace of every lab; the lab's
// name follows: l2wglab-two-hypervisors-vm11. It is not a netns.New base
// followed by digits, so CleanupStale never takes a lab's namespaces.
const nsPrefixBase = "l2wglab-"

// nsPrefix is the namespace name prefix of the lab called name.
func nsPrefix(name string) string { return nsPrefixBase + name + "-" }

// state is a lab's state file, state.json in its directory. Every command
// that changes a lab holds the directory's lock while it reads, changes and
// writes it, so lab up, lab cut and lab down from several shells never
// lose each other's changes.
type state struct {
	Name     string    `json:"name"`
	Topology string    `json:"topology"` // the topology's name
	Source   string    `json:"source"`   // shipped name or path
	Prefix   string    `json:"prefix"`   // of namespace names
	Created  time.Time `json:"created"`
	Seed     int64     `json:"seed"`
	L2WG     string    `json:"l2wg"` // the binary
	// SiteL2WG: the sites that run another binary (Options.SiteL2WG).
	SiteL2WG map[string]string `json:"site_l2wg,omitempty"`
	Version  string            `json:"version,omitempty"`
	// Detached: made by lab up, it runs until lab down. Otherwise Owner is
	// the lab run process whose lab this is.
	Detached bool        `json:"detached"`
	Owner    *procRecord `json:"owner,omitempty"`
	STP      bool        `json:"stp"`  // node configs carry [stp]
	Show     bool        `json:"show"` // the binary has l2wg show
	// Namespaces are the short names of the namespaces made so far; each is
	// recorded before it is made.
	Namespaces []string               `json:"namespaces"`
	Procs      map[string]*procRecord `json:"procs"` // "relay", "l2wg hv1"
	Keys       map[string]string      `json:"public_keys"`
	Cuts       []string               `json:"cuts,omitempty"`    // "a b", sorted pair
	Stopped    []string               `json:"stopped,omitempty"` // sites whose l2wg lab stop stopped
	// Addrs are the addresses that roaming changed: "node/ifname" -> addr.
	Addrs map[string]string `json:"addrs,omitempty"`
	Ready bool              `json:"ready"` // built completely
}

// A procRecord identifies a process the lab started. A pid alone could be
// reused after the process dies; with the start time (in clock ticks after
// boot, /proc/PID/stat field 22) it names one process only.
type procRecord struct {
	PID   int      `json:"pid"`
	Start uint64   `json:"start"`
	Argv  []string `json:"argv,omitempty"`
	Log   string   `json:"log,omitempty"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// readState reads dir's state file.
func readState(dir string) (*state, error) {
	data, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(dir), err)
	}
	if st.Procs == nil {
		st.Procs = make(map[string]*procRecord)
	}
	return &st, nil
}

func writeState(dir string, st *state) error {
	if err := writeJSONAtomic(statePath(dir), st); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}

// lockDir takes dir's lock (flock on dir/lock) and returns its release.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock lab: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock lab: %w", err)
	}
	return func() { f.Close() }, nil
}

// updateState runs fn on dir's state under the lock and writes the result.
func updateState(dir string, fn func(*state) error) error {
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := readState(dir)
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	return writeState(dir, st)
}

// procStart returns the start time of process pid (clock ticks after boot).
func procStart(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after its closing one.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/pid/stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("malformed /proc/pid/stat")
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22 of the whole line
}

// record returns the record of a process that has just been started.
func record(pid int, argv []string, log string) *procRecord {
	start, _ := procStart(pid)
	return &procRecord{PID: pid, Start: start, Argv: argv, Log: log}
}

// alive reports whether the recorded process still runs: the same pid with
// the same start time, and not a zombie.
func (r *procRecord) alive() bool {
	if r == nil || r.PID <= 0 {
		return false
	}
	start, err := procStart(r.PID)
	if err != nil || start != r.Start {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.PID))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && i+2 < len(data) && data[i+2] != 'Z'
}

// ours reports whether the recorded process is still the one the lab
// started: alive, and its command line names the lab's directory.
func (r *procRecord) ours(dir string) bool {
	if !r.alive() {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", r.PID))
	return err == nil && bytes.Contains(cmdline, []byte(dir))
}

// stopRecorded ends the recorded processes that are still the lab's:
// SIGTERM, then SIGKILL after timeout. It returns how many it signalled.
func stopRecorded(dir string, recs []*procRecord, timeout time.Duration) int {
	var live []*procRecord
	for _, r := range recs {
		if r.ours(dir) {
			syscall.Kill(r.PID, syscall.SIGTERM)
			live = append(live, r)
		}
	}
	deadline := time.Now().Add(timeout)
	for _, r := range live {
		for r.alive() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if r.alive() {
			syscall.Kill(r.PID, syscall.SIGKILL)
			// Gone only once it has exited: a killed process still
			// runs until the kernel has torn it down (its TAP, its
			// sockets), and "lab down" then found it alive.
			for end := time.Now().Add(5 * time.Second); r.alive() && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	return len(live)
}

// labDirs returns the names of the labs that have a directory under root.
func labDirs(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && validLabName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
