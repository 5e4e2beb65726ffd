package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/tomlpos"
	"github.com/l2wg/l2wg/tunnel"
)

// Reload re-reads node.toml and applies the difference live: peers added,
// removed and changed (endpoint, keepalive, cost), spanning-tree priority,
// timers and costs, isolate_host, log_level, listen_port and
// switch.ageing_time. Sessions of unchanged peers, their FDB entries and the
// traffic over them are not touched. A config that does not validate, or
// that changes a setting only a restart can change, changes nothing.

// reloadResult is the control socket's answer to "reload".
type reloadResult struct {
	OK      bool     `json:"ok"`
	Changes []string `json:"changes,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// restartOnly are the settings a running l2wg cannot change.
var restartOnly = []struct {
	field string
	get   func(*nodeConfig) any
}{
	{"private_key_file", func(c *nodeConfig) any { return c.PrivateKey }},
	{"tap.name", func(c *nodeConfig) any { return c.TAPName }},
	{"tap.mtu", func(c *nodeConfig) any { return c.TAPMTU }},
	{"tap.bridge", func(c *nodeConfig) any { return c.TAPBridge }},
	{"tap.persistent", func(c *nodeConfig) any { return c.TAPPersistent }},
	{"tap.offload", func(c *nodeConfig) any { return c.TAPOffload }},
	{"tunnel.mtu", func(c *nodeConfig) any { return c.TunnelMTU }},
	{"tunnel.reassembly_timeout", func(c *nodeConfig) any { return c.ReassemblyTimeout }},
	{"tunnel.reassembly_peer_bytes", func(c *nodeConfig) any { return c.ReassemblyPeerBytes }},
	{"tunnel.reassembly_total_bytes", func(c *nodeConfig) any { return c.ReassemblyTotalBytes }},
	{"switch.max_fdb_entries", func(c *nodeConfig) any { return c.MaxFDBEntries }},
	{"stp.enabled", func(c *nodeConfig) any { return c.STP.Enabled }},
	{"stp.tap", func(c *nodeConfig) any { return c.STP.TAPMode }},
	{"stp.protocol", func(c *nodeConfig) any { return c.STP.Protocol }},
	{"metrics_listen", func(c *nodeConfig) any { return c.MetricsListen }},
	{"tunnel.probe_interval", func(c *nodeConfig) any { return c.ProbeInterval }},
	{"tunnel.probe_loss", func(c *nodeConfig) any { return c.ProbeLoss }},
}

// checkReloadable refuses a new config that changes a restart-only setting,
// naming the file, line and field.
func checkReloadable(cur, next *nodeConfig) error {
	var lines map[string]int
	if data, err := os.ReadFile(next.File); err == nil {
		lines, _ = tomlpos.KeyLines(data)
	}
	var errs configErrors
	for _, r := range restartOnly {
		if r.get(cur) != r.get(next) {
			msg := "changed: this setting takes a restart (l2wg reload applies peers, endpoints, keepalives, costs, stp priority, timers and bpdu_guard, isolate_host, log_level, listen_port, switch.ageing_time and storm_limit)"
			if r.field != "private_key_file" {
				msg = fmt.Sprintf("changed from %v to %v: this setting takes a restart", r.get(cur), r.get(next))
			}
			errs = append(errs, &configError{File: next.File, Line: lines[r.field], Field: r.field, Msg: msg})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// reload applies node.toml anew; it returns what changed.
func (n *node) reload() ([]string, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	next, err := loadConfig(n.cfg.File)
	if err != nil {
		return nil, err
	}
	cur := n.applied
	if err := checkReloadable(cur, next); err != nil {
		return nil, err
	}
	var changes []string
	note := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }

	if next.LogLevel != cur.LogLevel {
		n.level.Set(logLevel(next.LogLevel))
		note("log_level %q", next.LogLevel)
	}
	if next.IsolateHost != cur.IsolateHost {
		n.isolate.Store(next.IsolateHost)
		n.refreshHostFilter()
		note("isolate_host %v", next.IsolateHost)
	}
	if next.ListenPort != cur.ListenPort {
		if err := n.tun.SetListenPort(next.ListenPort); err != nil {
			return changes, err
		}
		note("listen_port %d", next.ListenPort)
	}
	if next.AgeingTime != cur.AgeingTime {
		if n.st != nil {
			n.st.setAgeing(next.AgeingTime)
		} else {
			n.br.SetAgeingTime(next.AgeingTime)
		}
		note("switch.ageing_time %s", next.AgeingTime)
	}
	if next.StormLimit != cur.StormLimit {
		n.setStormLimit(next.StormLimit)
		note("switch.storm_limit %d", next.StormLimit)
	}
	if next.STP.BPDUGuard != cur.STP.BPDUGuard && n.st != nil {
		n.st.setBPDUGuard(next.STP.BPDUGuard)
		note("stp.bpdu_guard %v", next.STP.BPDUGuard)
	}
	if n.st != nil {
		s, c := next.STP, cur.STP
		if s.Priority != c.Priority || s.HelloTime != c.HelloTime || s.MaxAge != c.MaxAge || s.ForwardDelay != c.ForwardDelay {
			if err := n.st.setBridge(s); err != nil {
				return changes, err
			}
			note("stp priority %d, hello_time %s, max_age %s, forward_delay %s", s.Priority, s.HelloTime, s.MaxAge, s.ForwardDelay)
		}
		if s.TAPCost != c.TAPCost && n.st.tapMode != tapEdge {
			if err := n.st.setPortCost(n.tapID, s.TAPCost); err != nil {
				return changes, err
			}
			note("stp.tap_cost %d", s.TAPCost)
		}
	}
	peerChanges, err := n.reloadPeers(cur, next)
	changes = append(changes, peerChanges...)
	if err != nil {
		return changes, err
	}
	n.applied = next
	return changes, nil
}

// reloadPeers removes, changes and adds peers, in that order. A renamed peer
// is removed and added again (its session restarts).
func (n *node) reloadPeers(cur, next *nodeConfig) ([]string, error) {
	type entry struct {
		pc   tunnel.PeerConfig
		cost uint32
	}
	index := func(c *nodeConfig) map[[32]byte]entry {
		m := make(map[[32]byte]entry, len(c.Peers))
		for i, pc := range c.Peers {
			m[pc.PublicKey] = entry{pc, c.PeerCosts[i]}
		}
		return m
	}
	was, now := index(cur), index(next)
	ports := make(map[[32]byte]*tunnel.PeerPort)
	for _, p := range n.tun.Peers() {
		ports[p.Key()] = p
	}
	var changes []string
	for key, old := range was {
		e, keep := now[key]
		if keep && e.pc.Name == old.pc.Name {
			continue
		}
		if p := ports[key]; p != nil && n.st != nil {
			n.st.removePort(p.PortID())
			n.setAutoCost(p.PortID(), false)
		}
		if err := n.tun.RemovePeer(key); err != nil {
			return changes, err
		}
		changes = append(changes, fmt.Sprintf("removed peer %s", old.pc.Name))
	}
	for key, e := range now {
		old, had := was[key]
		switch {
		case had && old.pc.Name == e.pc.Name:
			if old.pc.Endpoint != e.pc.Endpoint || old.pc.PersistentKeepalive != e.pc.PersistentKeepalive {
				if err := n.tun.UpdatePeer(e.pc); err != nil {
					return changes, err
				}
				changes = append(changes, fmt.Sprintf("peer %s: endpoint %q, persistent_keepalive %s", e.pc.Name, e.pc.Endpoint, e.pc.PersistentKeepalive))
			}
			if old.cost != e.cost && n.st != nil {
				id := ports[key].PortID()
				if err := n.st.setPortCost(id, e.cost); err != nil {
					return changes, err
				}
				n.setAutoCost(id, e.cost == costAuto)
				changes = append(changes, fmt.Sprintf("peer %s: cost %s", e.pc.Name, costText(e.cost)))
			}
		default:
			p, err := n.tun.AddPeer(e.pc)
			if err != nil {
				return changes, err
			}
			if n.st != nil {
				if err := n.st.addPort(p.PortID(), p.Name(), e.cost, false); err != nil {
					return changes, err
				}
				n.setAutoCost(p.PortID(), e.cost == costAuto)
			}
			changes = append(changes, fmt.Sprintf("added peer %s", e.pc.Name))
		}
	}
	return changes, nil
}

// reloadAndLog reloads on SIGHUP and logs the outcome.
func (n *node) reloadAndLog() reloadResult {
	changes, err := n.reload()
	res := reloadResult{OK: err == nil, Changes: changes}
	if err != nil {
		res.Error = err.Error()
		n.log.Error("reload failed; the running config is unchanged"+ifThen(len(changes) > 0, " except the changes listed"),
			"err", err, "changes", strings.Join(changes, "; "))
		return res
	}
	if len(changes) == 0 {
		n.log.Info("reload: nothing changed")
	}
	for _, c := range changes {
		n.log.Info("reload", "change", c)
	}
	return res
}

// cmdReload asks a running l2wg to reload its config: `l2wg reload [-i tap]`.
func cmdReload(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tap := fs.String("i", "", "the TAP `name` of the l2wg to reload (default: the only one running)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return &exitError{code: 2}
	}
	addr, err := findControl(*tap)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("unix", addr, 2*time.Second)
	if err != nil {
		return fmt.Errorf("no l2wg answers at %s in this network namespace: %w", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintln(c, "reload")
	var res reloadResult
	if err := json.NewDecoder(c).Decode(&res); err != nil {
		return fmt.Errorf("read l2wg's answer (are you root?): %w", err)
	}
	for _, ch := range res.Changes {
		fmt.Fprintln(stdout, ch)
	}
	if !res.OK {
		return errors.New(res.Error)
	}
	if len(res.Changes) == 0 {
		fmt.Fprintln(stdout, "nothing changed")
	}
	return nil
}

func costText(c uint32) string {
	if c == costAuto {
		return "auto"
	}
	return fmt.Sprint(c)
}
