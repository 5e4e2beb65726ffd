package node

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/l2wg/l2wg/bridge"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

// Reload re-reads node.toml and puts the difference in force, all or
// nothing: a config that does not validate, or that changes a setting only
// a restart can change, changes nothing; a change that fails half-way is
// undone, step by step in reverse, before the error is returned. Sessions
// of unchanged peers, their FDB entries and the traffic over them are not
// touched. The config in force (Applied, what `l2wg show` reports) is the
// new one only once every step has been applied.
//
// To make a key live: mark its row Live in config.Keys, and give it a
// setter here, in liveKeys (a peer's key: livePeerKeys), that puts the
// key's value from a Config (a Peer) in force. Undoing a step is setting the
// old value again, so the setter is all reload needs. A new kind of change
// is one more method of live (live.go, and the fake in reload_test.go).
// TestLiveKeysHaveSetters fails for a live key without a setter and for a
// setter without a case in liveCases; apply refuses such a key rather than
// ignore it.

// live is the running state reload changes, one setter per kind of change.
// The node implements it over its switch, tree and tunnel (live.go); the
// tests with a fake.
type live interface {
	setLogLevel(slog.Level)
	setIsolateHost(bool)
	setListenPort(int) error
	setAgeing(time.Duration)
	setStormLimit(int)
	setBPDUGuard(bool)
	setBridgeTimers(config.STP) error // priority, hello_time, max_age, forward_delay
	setTAPCost(uint32) error
	setTAPVLANs(bridge.VLANFilter)
	addPeer(config.Peer) error
	removePeer(config.Peer) error
	updatePeer(config.Peer) error // endpoint and persistent_keepalive
	setPeerCost(config.Peer) error
	setPeerVLANs(config.Peer) error
}

// setter puts one live key's value from c in force.
type setter func(l live, c *config.Config) error

// liveKeys has a setter for every key config.Keys marks Live (a peer's
// keys apart: reload adds, removes and changes peers as a whole).
var liveKeys = map[string]setter{
	"listen_port":  func(l live, c *config.Config) error { return l.setListenPort(c.ListenPort) },
	"isolate_host": func(l live, c *config.Config) error { l.setIsolateHost(c.IsolateHost); return nil },
	"log_level":    func(l live, c *config.Config) error { l.setLogLevel(c.SlogLevel()); return nil },

	"switch.ageing_time": func(l live, c *config.Config) error { l.setAgeing(c.AgeingTime); return nil },
	"switch.storm_limit": func(l live, c *config.Config) error { l.setStormLimit(c.StormLimit); return nil },

	"stp.priority":      setBridgeTimers,
	"stp.hello_time":    setBridgeTimers,
	"stp.max_age":       setBridgeTimers,
	"stp.forward_delay": setBridgeTimers,
	"stp.tap_cost":      func(l live, c *config.Config) error { return l.setTAPCost(c.STP.TAPCost) },
	"stp.bpdu_guard":    func(l live, c *config.Config) error { l.setBPDUGuard(c.STP.BPDUGuard); return nil },

	"tap.vlans":    setTAPVLANs,
	"tap.untagged": setTAPVLANs,
}

func setTAPVLANs(l live, c *config.Config) error { l.setTAPVLANs(c.TAPVLANs); return nil }

func setBridgeTimers(l live, c *config.Config) error { return l.setBridgeTimers(c.STP) }

// peerSetter puts one key of peer p in force.
type peerSetter func(l live, p config.Peer) error

// livePeerKeys has a setter for every key of a peer that can change while
// the peer stays (its name and public key cannot: such a peer is removed and
// added again).
var livePeerKeys = map[string]peerSetter{
	"peer.endpoint":             func(l live, p config.Peer) error { return l.updatePeer(p) },
	"peer.persistent_keepalive": func(l live, p config.Peer) error { return l.updatePeer(p) },
	"peer.cost":                 func(l live, p config.Peer) error { return l.setPeerCost(p) },
	"peer.vlans":                func(l live, p config.Peer) error { return l.setPeerVLANs(p) },
	"peer.untagged":             func(l live, p config.Peer) error { return l.setPeerVLANs(p) },
}

// step is one change: do puts it in force, undo takes it back.
type step struct {
	what     string // as reload reports it
	do, undo func() error
}

// plan lists the steps that take l from cur to next: listen_port first
// (the step most likely to fail, on a port another socket holds: then
// nothing else has changed yet), then the peers (removed, changed, added:
// a renamed peer is removed before it is added again), then the other
// keys in the table's order. Keys whose setter is shared (the tree's
// timers) are one step.
func plan(l live, cur, next *config.Config, d config.Delta) []step {
	var first, peers, rest []step
	done := make(map[string]bool) // setters planned, by the first key's path
	for _, c := range d.Keys {
		set := liveKeys[c.Key.Path]
		name := setterName(c.Key.Path)
		if done[name] {
			continue
		}
		done[name] = true
		s := step{
			what: describe(c, next),
			do:   func() error { return set(l, next) },
			undo: func() error { return set(l, cur) },
		}
		if c.Key.Path == "listen_port" {
			first = append(first, s)
		} else {
			rest = append(rest, s)
		}
	}
	for _, p := range d.Removed {
		peers = append(peers, step{
			what: "removed peer " + p.Name,
			do:   func() error { return l.removePeer(p) },
			undo: func() error { return l.addPeer(p) },
		})
	}
	for _, c := range d.Changed {
		planned := make(map[string]bool)
		for _, k := range c.Keys {
			set, name := livePeerKeys[k.Path], setterName(k.Path)
			if planned[name] {
				continue
			}
			planned[name] = true
			peers = append(peers, step{
				what: describePeer(k.Path, c.New),
				do:   func() error { return set(l, c.New) },
				undo: func() error { return set(l, c.Old) },
			})
		}
	}
	for _, p := range d.Added {
		peers = append(peers, step{
			what: "added peer " + p.Name,
			do:   func() error { return l.addPeer(p) },
			undo: func() error { return l.removePeer(p) },
		})
	}
	return append(append(first, peers...), rest...)
}

// setterName groups keys that share a setter: the tree's timers, the TAP's
// VLANs, a peer's endpoint and keepalive (the tunnel's part of a peer), and
// a peer's VLANs.
func setterName(path string) string {
	switch path {
	case "stp.priority", "stp.hello_time", "stp.max_age", "stp.forward_delay":
		return "stp timers"
	case "tap.vlans", "tap.untagged":
		return "tap vlans"
	case "peer.endpoint", "peer.persistent_keepalive":
		return "peer endpoint"
	case "peer.vlans", "peer.untagged":
		return "peer vlans"
	}
	return path
}

// describePeer writes a change of a peer's key as reload reports it.
func describePeer(path string, p config.Peer) string {
	switch setterName(path) {
	case "peer endpoint":
		return fmt.Sprintf("peer %s: endpoint %q, persistent_keepalive %s", p.Name, p.Endpoint, p.PersistentKeepalive)
	case "peer.cost":
		return fmt.Sprintf("peer %s: cost %s", p.Name, config.CostText(p.Cost))
	case "peer vlans":
		return fmt.Sprintf("peer %s: vlans %q, untagged %v", p.Name, p.VLANs.VIDs, p.VLANs.Untagged)
	}
	return fmt.Sprintf("peer %s: %s changed", p.Name, strings.TrimPrefix(path, "peer."))
}

// describe writes a change as reload reports it.
func describe(c config.Change, next *config.Config) string {
	if setterName(c.Key.Path) == "stp timers" {
		s := next.STP
		return fmt.Sprintf("stp priority %d, hello_time %s, max_age %s, forward_delay %s", s.Priority, s.HelloTime, s.MaxAge, s.ForwardDelay)
	}
	if setterName(c.Key.Path) == "tap vlans" {
		return fmt.Sprintf("tap vlans %q, untagged %v", next.TAPVLANs.VIDs, next.TAPVLANs.Untagged)
	}
	if s, ok := c.New.(string); ok {
		return fmt.Sprintf("%s %q", c.Key.Path, s)
	}
	return fmt.Sprintf("%s %v", c.Key.Path, c.New)
}

// apply takes l from cur to next, all or nothing: it returns the changes
// made, or the error of the step that failed after undoing the steps before
// it. An undo that fails too is in the error: then l is neither cur nor
// next, and the error says which steps stand.
func apply(l live, cur, next *config.Config) ([]string, error) {
	d := config.Diff(cur, next)
	if err := d.RestartOnly(next); err != nil {
		return nil, err
	}
	for _, c := range d.Keys {
		if liveKeys[c.Key.Path] == nil {
			return nil, fmt.Errorf("reload: %s is live in config.Keys but has no setter in node.liveKeys", c.Key.Path)
		}
	}
	for _, c := range d.Changed {
		for _, k := range c.Keys {
			if livePeerKeys[k.Path] == nil {
				return nil, fmt.Errorf("reload: %s is live in config.Keys but has no setter in node.livePeerKeys", k.Path)
			}
		}
	}
	steps := plan(l, cur, next, d)
	for i, s := range steps {
		err := s.do()
		if err == nil {
			continue
		}
		err = fmt.Errorf("%s: %w; nothing changed", s.what, err)
		var stuck []string
		for j := i - 1; j >= 0; j-- {
			if uerr := steps[j].undo(); uerr != nil {
				stuck = append(stuck, fmt.Sprintf("undo %s: %v", steps[j].what, uerr))
			}
		}
		if len(stuck) > 0 {
			err = fmt.Errorf("%s: %w; and undoing failed, these changes stand: %s", s.what, errors.Unwrap(err), strings.Join(stuck, "; "))
		}
		return nil, err
	}
	changes := make([]string, len(steps))
	for i, s := range steps {
		changes[i] = s.what
	}
	return changes, nil
}

// reload applies node.toml anew; it returns what changed.
func (n *Node) reload() ([]string, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	next, err := config.Load(n.cfg.File)
	if err != nil {
		return nil, err
	}
	changes, err := apply(n, n.applied.Load(), next)
	if err != nil {
		return nil, err
	}
	n.applied.Store(next)
	if n.reresolve != nil {
		n.reresolve.Kick() // every DNS endpoint resolved again
	}
	return changes, nil
}

// Applied is the config in force: the one the node started with, then each
// successful reload's.
func (n *Node) Applied() *config.Config { return n.applied.Load() }

// Reload reloads node.toml and logs the outcome (SIGHUP, l2wg reload).
func (n *Node) Reload() control.ReloadResult {
	changes, err := n.reload()
	if err != nil {
		n.log.Error("reload failed", "err", err)
		return control.ReloadResult{Error: err.Error()}
	}
	if len(changes) == 0 {
		n.log.Info("reload: nothing changed")
	}
	for _, c := range changes {
		n.log.Info("reload", "change", c)
	}
	return control.ReloadResult{OK: true, Changes: changes}
}
