package node

import (
	"fmt"
	"strings"

	"github.com/l2wg/l2wg/bridge/spanning"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
	"github.com/l2wg/l2wg/tunnel"
)

// Reload re-reads node.toml and applies the difference live: peers added,
// removed and changed (endpoint, keepalive, cost), and every key the table
// marks live. Sessions of unchanged peers, their FDB entries and the
// traffic over them are not touched. A config that does not validate, or
// that changes a setting only a restart can change, changes nothing.

// reload applies node.toml anew; it returns what changed.
func (n *Node) reload() ([]string, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	next, err := config.Load(n.cfg.File)
	if err != nil {
		return nil, err
	}
	cur := n.applied
	d := config.Diff(cur, next)
	if err := d.RestartOnly(next); err != nil {
		return nil, err
	}
	var changes []string
	note := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }

	if next.LogLevel != cur.LogLevel {
		n.level.Set(next.SlogLevel())
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
			n.st.SetAgeing(next.AgeingTime)
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
		n.st.SetBPDUGuard(next.STP.BPDUGuard)
		note("stp.bpdu_guard %v", next.STP.BPDUGuard)
	}
	if n.st != nil {
		s, c := next.STP, cur.STP
		if s.Priority != c.Priority || s.HelloTime != c.HelloTime || s.MaxAge != c.MaxAge || s.ForwardDelay != c.ForwardDelay {
			if err := n.st.SetBridge(treeConfig(s)); err != nil {
				return changes, err
			}
			note("stp priority %d, hello_time %s, max_age %s, forward_delay %s", s.Priority, s.HelloTime, s.MaxAge, s.ForwardDelay)
		}
		if s.TAPCost != c.TAPCost && n.st.TAPModeInUse() != spanning.TAPEdge {
			if err := n.st.SetPortCost(n.tapID, s.TAPCost); err != nil {
				return changes, err
			}
			note("stp.tap_cost %d", s.TAPCost)
		}
	}
	peerChanges, err := n.reloadPeers(d)
	changes = append(changes, peerChanges...)
	if err != nil {
		return changes, err
	}
	n.applied = next
	return changes, nil
}

// reloadPeers removes, changes and adds peers, in that order. A renamed peer
// is removed and added again (its session restarts).
func (n *Node) reloadPeers(d config.Delta) ([]string, error) {
	ports := make(map[[32]byte]*tunnel.PeerPort)
	for _, p := range n.tun.Peers() {
		ports[p.Key()] = p
	}
	var changes []string
	for _, old := range d.Removed {
		if p := ports[old.PublicKey]; p != nil && n.st != nil {
			n.st.RemovePort(p.PortID())
			n.setAutoCost(p.PortID(), false)
		}
		if err := n.tun.RemovePeer(old.PublicKey); err != nil {
			return changes, err
		}
		changes = append(changes, fmt.Sprintf("removed peer %s", old.Name))
	}
	for _, c := range d.Changed {
		e := c.New
		if c.Endpoint() {
			if err := n.tun.UpdatePeer(e.PeerConfig); err != nil {
				return changes, err
			}
			changes = append(changes, fmt.Sprintf("peer %s: endpoint %q, persistent_keepalive %s", e.Name, e.Endpoint, e.PersistentKeepalive))
		}
		if c.Cost() && n.st != nil {
			id := ports[e.PublicKey].PortID()
			if err := n.st.SetPortCost(id, e.Cost); err != nil {
				return changes, err
			}
			n.setAutoCost(id, e.Cost == config.CostAuto)
			changes = append(changes, fmt.Sprintf("peer %s: cost %s", e.Name, config.CostText(e.Cost)))
		}
	}
	for _, e := range d.Added {
		p, err := n.tun.AddPeer(e.PeerConfig)
		if err != nil {
			return changes, err
		}
		if n.st != nil {
			if err := n.st.AddPort(p.PortID(), p.Name(), e.Cost, false); err != nil {
				return changes, err
			}
			n.setAutoCost(p.PortID(), e.Cost == config.CostAuto)
		}
		changes = append(changes, fmt.Sprintf("added peer %s", e.Name))
	}
	return changes, nil
}

// Reload reloads node.toml and logs the outcome (SIGHUP, l2wg reload).
func (n *Node) Reload() control.ReloadResult {
	changes, err := n.reload()
	res := control.ReloadResult{OK: err == nil, Changes: changes}
	if err != nil {
		res.Error = err.Error()
		msg := "reload failed; the running config is unchanged"
		if len(changes) > 0 {
			msg += " except the changes listed"
		}
		n.log.Error(msg, "err", err, "changes", strings.Join(changes, "; "))
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
