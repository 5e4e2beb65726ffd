package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/control"
)

// SiteStatus is a site's `l2wg show --json` (the control socket's
// contract, package control).
type SiteStatus struct{ control.Status }

// peerLive reports whether the site has a WireGuard session with peer.
func (s *SiteStatus) peerLive(peer string) bool {
	for _, p := range s.Peers {
		if p.Name == peer {
			return p.Live
		}
	}
	return false
}

// peerEndpoint returns the endpoint the site currently uses for peer.
func (s *SiteStatus) peerEndpoint(peer string) string {
	for _, p := range s.Peers {
		if p.Name == peer {
			return p.Endpoint
		}
	}
	return ""
}

// portState returns the spanning-tree state and role of the port called name.
func (s *SiteStatus) portState(name string) (state, role string) {
	if s.STP == nil {
		return "", ""
	}
	for _, p := range s.STP.Ports {
		if p.Name == name {
			return p.State, p.Role
		}
	}
	return "", ""
}

// Status asks site's l2wg for its state (l2wg show --json in its namespace).
func (l *Lab) Status(ctx context.Context, site string) (*SiteStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := l.NS.ExecContext(ctx, site, l.l2wg, "show", "--json", "-i", tapName)
	if err != nil {
		return nil, err
	}
	var st SiteStatus
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("show of %s: %w", site, err)
	}
	return &st, nil
}

// statuses asks every running site at once.
func (l *Lab) statuses(ctx context.Context, sites []string) (map[string]*SiteStatus, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		all  = make(map[string]*SiteStatus)
		errs []string
	)
	for _, s := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := l.Status(ctx, s)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			all[s] = st
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Strings(errs)
		return all, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return all, nil
}

// runningSites returns the sites whose l2wg is not stopped.
func (l *Lab) runningSites() []string {
	st, _ := readState(l.Dir)
	var sites []string
	for _, n := range l.Plan.Sites() {
		if st == nil || !contains(st.Stopped, n.Name) {
			sites = append(sites, n.Name)
		}
	}
	return sites
}

// cutPair reports whether the underlay between a and b is cut.
func cutPair(st *state, a, b string) bool {
	return st != nil && contains(st.Cuts, pairKey(a, b))
}

func pairKey(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + " " + b
}

// activePeerings returns the peerings between running sites whose
// underlay is not cut (a cut link on the way, or a cut between the two).
func (l *Lab) activePeerings() []*PlannedPeering {
	st, _ := readState(l.Dir)
	running := l.runningSites()
	var out []*PlannedPeering
	for _, pe := range l.Plan.Peerings {
		if !contains(running, pe.A.Name) || !contains(running, pe.B.Name) || l.peeringCut(st, pe) {
			continue
		}
		out = append(out, pe)
	}
	return out
}

// peeringCut reports whether a cut separates the two sites of pe: a cut
// between them, or a cut link that is on either's only way out.
func (l *Lab) peeringCut(st *state, pe *PlannedPeering) bool {
	if st == nil || len(st.Cuts) == 0 {
		return false
	}
	if cutPair(st, pe.A.Name, pe.B.Name) {
		return true
	}
	for _, s := range []*Node{pe.A, pe.B} {
		up := 0
		for _, i := range s.Ifaces {
			if !cutPair(st, s.Name, i.Peer.Node.Name) {
				up++
			}
		}
		if up == 0 {
			return true
		}
		// A NAT router in front whose uplink is cut.
		if r := s.BehindNAT; r != nil && cutPair(st, r.Name, l.Plan.uplinkOf(r)) {
			return true
		}
	}
	return false
}

// Convergence is the outcome of a wait for convergence.
type Convergence struct {
	OK      bool
	Took    time.Duration
	Waiting string // what was still missing when it gave up
	Status  map[string]*SiteStatus
}

// Converge waits until every active peering has a WireGuard session and, with
// the spanning tree on, every running site agrees on a running root, no port
// is in transition, and the forwarding peerings form a tree that
// spans the running sites, for two seconds in a row. It polls the real
// state until timeout.
func (l *Lab) Converge(ctx context.Context, timeout time.Duration) Convergence {
	start := time.Now()
	deadline := start.Add(timeout)
	// With a spanning tree, the state must hold for a while: just after a
	// change (a healed cut) the old tree still looks complete until the
	// first BPDUs of the new one arrive.
	var settle time.Duration
	if l.STP {
		settle = 2 * time.Second
	}
	var (
		c       Convergence
		last    string
		okSince time.Time
	)
	for {
		sites := l.runningSites()
		if !l.Show {
			c.OK = true // nothing to look at: the checks wait for traffic themselves
			c.Took = time.Since(start)
			return c
		}
		all, err := l.statuses(ctx, sites)
		c.Status = all
		if err != nil {
			c.Waiting = err.Error()
		} else {
			c.Waiting = l.notConverged(all, sites)
		}
		if ctx.Err() != nil {
			c.Took = time.Since(start)
			return c
		}
		// Log what is awaited when it changes in kind, not at every step.
		if kind, _, _ := strings.Cut(c.Waiting, ":"); c.Waiting != "" && kind != last {
			l.logf("%5.1fs waiting: %s", time.Since(start).Seconds(), c.Waiting)
			last = kind
		}
		if c.Waiting == "" {
			if okSince.IsZero() {
				okSince = time.Now()
			}
			if time.Since(okSince) >= settle {
				c.OK = true
				c.Took = time.Since(start)
				return c
			}
		} else {
			okSince = time.Time{}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.Took = time.Since(start)
			return c
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// notConverged says what is still missing, or "" when converged.
func (l *Lab) notConverged(all map[string]*SiteStatus, sites []string) string {
	active := l.activePeerings()
	for _, pe := range active {
		if !all[pe.A.Name].peerLive(pe.B.Name) || !all[pe.B.Name].peerLive(pe.A.Name) {
			return fmt.Sprintf("no WireGuard session yet: %s-%s", pe.A.Name, pe.B.Name)
		}
	}
	if !l.STP {
		return ""
	}
	t := l.tree(all, sites, active)
	switch {
	case t.missing != "":
		return t.missing
	case len(t.roots) != 1:
		return fmt.Sprintf("sites disagree on the root bridge: %s", strings.Join(t.rootList(), ", "))
	case t.rootSite == "":
		return fmt.Sprintf("the root %s is not a running site", t.rootList()[0])
	case len(t.transitional) > 0:
		some := t.transitional
		if len(some) > 3 {
			some = append(some[:3:3], "...")
		}
		return fmt.Sprintf("ports not yet in a stable state (%d): %s", len(t.transitional), strings.Join(some, ", "))
	case !t.spanning:
		return fmt.Sprintf("the forwarding peerings (%s) do not yet span the %d running sites", strings.Join(t.forwarding, ", "), len(sites))
	}
	return ""
}
