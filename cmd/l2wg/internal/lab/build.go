package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/config"
	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// Build makes the lab of topology t: namespaces, links, relay, routes, NAT,
// VM bridges and VMs, node configs and keys, and a running l2wg per site.
// It returns once every l2wg's TAP is in its bridge; Converge waits for the
// network. On failure everything made so far is removed.
func Build(ctx context.Context, t *Topology, opt Options) (*Lab, error) {
	plan, err := MakePlan(t)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", t.Name, err)
	}
	name := opt.Name
	if name == "" {
		name = t.Name
	}
	if !validLabName(name) {
		return nil, fmt.Errorf("lab name %q: use 1 to 40 of a-z, 0-9, '-', '_'", name)
	}
	if opt.L2WG == "" {
		return nil, errors.New("build lab: no l2wg binary")
	}
	root := opt.StateRoot
	if root == "" {
		root = DefaultStateRoot
	}
	l := &Lab{
		Name: name, Dir: filepath.Join(root, name), Plan: plan,
		l2wg: opt.L2WG, siteL2WG: opt.SiteL2WG, log: opt.Log, procs: make(map[string]*netns.Proc),
	}
	for site := range opt.SiteL2WG {
		if !slices.ContainsFunc(plan.Sites(), func(n *Node) bool { return n.Name == site }) {
			return nil, fmt.Errorf("build lab: -site-l2wg %s: no such site in %s", site, t.Name)
		}
	}
	switch {
	case opt.Seed != nil:
		l.Seed = *opt.Seed
	case t.Seed != nil:
		l.Seed = *t.Seed
	default:
		l.Seed = randomSeed()
	}
	if err := l.claimDir(); err != nil {
		return nil, err
	}
	ns, err := netns.NewNamed(nsPrefix(name), filepath.Join(l.Dir, "logs"))
	if err != nil {
		os.RemoveAll(l.Dir)
		return nil, err
	}
	l.NS = ns
	st := &state{
		Name: name, Topology: t.Name, Source: t.Source, Prefix: nsPrefix(name),
		Created: time.Now(), Seed: l.Seed, L2WG: opt.L2WG, SiteL2WG: opt.SiteL2WG, Detached: opt.Detach,
		Procs: make(map[string]*procRecord), Keys: make(map[string]string),
	}
	if !opt.Detach {
		st.Owner = record(os.Getpid(), nil, "")
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "topology.toml"), t.Text, 0o644); err != nil {
		return nil, l.failBuild(fmt.Errorf("build lab: %w", err))
	}
	if err := writeState(l.Dir, st); err != nil {
		return nil, l.failBuild(err)
	}
	steps := []struct {
		name string
		fn   func(context.Context, bool) error
	}{
		{"configs", l.writeConfigs},
		{"namespaces", l.makeNamespaces},
		{"links", l.makeLinks},
		{"sites", l.makeSites},
		{"routes", l.applyAllRoutes},
		{"nat", l.applyNAT},
		{"relay", l.startRelay},
		{"l2wg", l.startAllSites},
	}
	for _, s := range steps {
		if s.name == "l2wg" && opt.Hold {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, l.failBuild(err)
		}
		if err := s.fn(ctx, opt.Detach); err != nil {
			return nil, l.failBuild(fmt.Errorf("build lab %s: %s: %w", name, s.name, err))
		}
	}
	if err := updateState(l.Dir, func(st *state) error { st.Ready = true; return nil }); err != nil {
		return nil, l.failBuild(err)
	}
	return l, nil
}

// failBuild removes what a failed Build made and returns err.
func (l *Lab) failBuild(err error) error {
	if derr := l.Down(); derr != nil {
		return errors.Join(err, derr)
	}
	return err
}

// claimDir creates the lab's directory. A directory left by a lab run
// whose process is gone is removed first; any other existing lab is an
// error.
func (l *Lab) claimDir() error {
	if err := os.MkdirAll(filepath.Dir(l.Dir), 0o755); err != nil {
		return fmt.Errorf("build lab: %w", err)
	}
	if err := os.Mkdir(l.Dir, 0o755); err == nil {
		// Namespaces of this name without a directory: a lab down that
		// could not delete them. Nothing else uses the prefix.
		if left, _ := netns.ListPrefix(nsPrefix(l.Name)); len(left) > 0 {
			l.logf("removing %d namespaces left by an earlier lab %s", len(left), l.Name)
			if _, err := netns.DeletePrefix(nsPrefix(l.Name)); err != nil {
				return err
			}
		}
		return nil
	} else if !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("build lab: %w", err)
	}
	st, err := readState(l.Dir)
	stale := err != nil && errors.Is(err, os.ErrNotExist) // a crash before the first write
	if err == nil && !st.Detached && !st.Owner.alive() {
		stale = true
	}
	if !stale {
		return fmt.Errorf("lab %s exists (%s); see l2wg lab status -n %s, or remove it with l2wg lab down -n %s", l.Name, l.Dir, l.Name, l.Name)
	}
	l.logf("removing the remains of an earlier run of lab %s", l.Name)
	if err := downDir(l.Dir, nsPrefix(l.Name)); err != nil {
		return err
	}
	if err := os.Mkdir(l.Dir, 0o755); err != nil {
		return fmt.Errorf("build lab: %w", err)
	}
	return nil
}

// writeConfigs makes every site's key and node.toml and has the binary
// check them. It finds out whether the binary knows [stp] and l2wg show.
func (l *Lab) writeConfigs(ctx context.Context, _ bool) error {
	p := l.Plan
	l.keys = make(map[string]keyPair)
	for _, n := range p.Sites() {
		k, err := newKeyPair()
		if err != nil {
			return err
		}
		l.keys[n.Name] = k
		if err := os.MkdirAll(l.siteDir(n.Name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(l.siteDir(n.Name), "node.key"), []byte(k.Private+"\n"), 0o600); err != nil {
			return err
		}
	}
	write := func(stp bool) error {
		for _, n := range p.Sites() {
			conf := p.renderNodeConf(n, l.keys, "node.key", nodeConfOptions{STP: stp})
			if err := os.WriteFile(l.ConfPath(n.Name), []byte(conf), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	// Does this l2wg know [stp]? A probe config with nothing but
	// [stp] enabled = true beyond the basics tells: one from before the
	// spanning tree rejects it as an unknown field.
	supported := true
	if len(p.Sites()) > 0 {
		probe := filepath.Join(l.siteDir(p.Sites()[0].Name), "stp-probe.toml")
		f, notes := p.nodeFile(p.Sites()[0], l.keys, "node.key", nodeConfOptions{})
		f.STP.Enabled = config.Ptr(true)
		text := marshalNodeConf(f, notes)
		if err := os.WriteFile(probe, []byte(text), 0o644); err != nil {
			return err
		}
		out, err := exec.CommandContext(ctx, l.l2wg, "check", "-c", probe).CombinedOutput()
		os.Remove(probe)
		supported = err == nil || !isUnknownSTP(string(out))
	}
	if err := write(supported); err != nil {
		return err
	}
	for _, n := range p.Sites() {
		if out, err := exec.CommandContext(ctx, l.l2wg, "check", "-c", l.ConfPath(n.Name)).CombinedOutput(); err != nil {
			return fmt.Errorf("l2wg check of %s's config: %w: %s", n.Name, err, strings.TrimSpace(string(out)))
		}
	}
	l.NoSTP = !supported
	// The shortest-path mesh runs no spanning tree, and needs none for loops.
	mesh := p.MeshProtocol() == ProtocolShortestPath
	l.STP = supported && (p.Topo.STP == nil || p.Topo.STP.on()) && !mesh
	switch {
	case mesh:
		// Loops are the mesh's business: it has no blocked peering.
	case p.Loop && l.NoSTP:
		return &SkipError{Reason: "this l2wg has no spanning tree, and the peerings of " + p.Topo.Name + " contain a loop (it would be a broadcast storm)"}
	case p.Loop && !l.STP && !mesh:
		return fmt.Errorf("the peerings of %s contain a loop, and [stp] enabled = false: that would be a broadcast storm", p.Topo.Name)
	case l.NoSTP && p.Topo.STP != nil:
		l.logf("this l2wg has no spanning tree: the node configs leave out [stp]")
	}
	out, _ := exec.CommandContext(ctx, l.l2wg, "show", "-i", "l2wglab-probe").CombinedOutput()
	l.Show = !strings.Contains(string(out), "unknown command")
	version, _ := exec.CommandContext(ctx, l.l2wg, "version").Output()
	return updateState(l.Dir, func(st *state) error {
		st.STP, st.Show = l.STP, l.Show
		st.Version = strings.TrimPrefix(strings.TrimSpace(string(version)), "l2wg ")
		for n, k := range l.keys {
			st.Keys[n] = k.Public
		}
		return nil
	})
}

// isUnknownSTP reports whether l2wg check rejected the probe's [stp] table:
// an l2wg from before the spanning tree.
func isUnknownSTP(out string) bool {
	return strings.Contains(out, "stp: unknown field") || strings.Contains(out, "stp.enabled: unknown field")
}

// makeNamespaces creates every namespace, each recorded before it is made,
// with its sysctls: no reverse-path filter (the lab's static routes need
// not be symmetric), forwarding on routers, no IPv6 on hypervisors (so they
// send nothing into the VM segment), broadcast pings answered by VMs.
func (l *Lab) makeNamespaces(_ context.Context, _ bool) error {
	for _, ns := range l.Plan.Namespaces() {
		if err := updateState(l.Dir, func(st *state) error { st.Namespaces = append(st.Namespaces, ns); return nil }); err != nil {
			return err
		}
		if err := l.NS.AddNS(ns); err != nil {
			return err
		}
		sysctls := [][2]string{
			{"net.ipv4.conf.all.rp_filter", "0"}, {"net.ipv4.conf.default.rp_filter", "0"},
			{"net.ipv4.conf.all.promote_secondaries", "1"}, {"net.ipv4.conf.default.promote_secondaries", "1"},
		}
		if n := l.Plan.Node(ns); n != nil && n.Router {
			sysctls = append(sysctls, [2]string{"net.ipv4.ip_forward", "1"})
		} else if n != nil {
			sysctls = append(sysctls, [2]string{"net.ipv6.conf.all.disable_ipv6", "1"}, [2]string{"net.ipv6.conf.default.disable_ipv6", "1"})
		} else if l.Plan.VM(ns) != nil {
			sysctls = append(sysctls, [2]string{"net.ipv4.icmp_echo_ignore_broadcasts", "0"})
		}
		for _, s := range sysctls {
			if err := l.NS.Sysctl(ns, s[0], s[1]); err != nil {
				return err
			}
		}
	}
	l.logf("made %d namespaces (prefix %s)", len(l.Plan.Namespaces()), nsPrefix(l.Name))
	return nil
}

// makeLinks creates every underlay link: a veth pair, or a TAP at each end
// for the relay.
func (l *Lab) makeLinks(_ context.Context, _ bool) error {
	for _, k := range l.Plan.Links {
		if k.Relayed {
			for _, e := range []*Iface{k.A, k.B} {
				if _, err := l.NS.IP(e.Node.Name, "tuntap", "add", "dev", e.Name, "mode", "tap"); err != nil {
					return fmt.Errorf("link %s: %w", k.Name(), err)
				}
				if err := l.NS.Up(e.Node.Name, e.Name); err != nil {
					return err
				}
			}
		} else if err := l.NS.Veth(k.A.Node.Name, k.A.Name, k.B.Node.Name, k.B.Name); err != nil {
			return fmt.Errorf("link %s: %w", k.Name(), err)
		}
		for _, e := range []*Iface{k.A, k.B} {
			if err := l.NS.SetMTU(e.Node.Name, e.Name, k.MTU); err != nil {
				return err
			}
			if err := l.NS.Addr(e.Node.Name, e.Name, e.Prefix().String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// makeSites gives every site its VM bridge, hidden from the VMs, and its
// VMs.
func (l *Lab) makeSites(_ context.Context, _ bool) error {
	for _, n := range l.Plan.Sites() {
		if err := l.NS.Bridge(n.Name, vmBridge); err != nil {
			return err
		}
		// The hypervisor neither asks nor answers ARP on the VM bridge.
		if _, err := l.NS.IP(n.Name, "link", "set", "dev", vmBridge, "arp", "off"); err != nil {
			return err
		}
		if err := l.NS.Sysctl(n.Name, "net.ipv4.conf."+vmBridge+".arp_ignore", "8"); err != nil {
			return err
		}
		for _, v := range n.VMs {
			if err := l.NS.Veth(v.Name, "eth0", n.Name, v.Port); err != nil {
				return err
			}
			if err := l.NS.SetMaster(n.Name, v.Port, vmBridge); err != nil {
				return err
			}
			if err := l.NS.Addr(v.Name, "eth0", v.Addr.String()); err != nil {
				return err
			}
		}
	}
	return l.joinLANs()
}

// applyAllRoutes installs every node's static routes.
func (l *Lab) applyAllRoutes(_ context.Context, _ bool) error {
	for _, n := range l.Plan.Nodes {
		if err := l.applyRoutes(n); err != nil {
			return err
		}
	}
	return nil
}

// applyRoutes installs (or reinstalls) node n's static routes in one ip
// -batch call. Routes over links that are down are skipped: the kernel
// refuses them.
func (l *Lab) applyRoutes(n *Node) error {
	if len(n.Routes) == 0 {
		return nil
	}
	var b strings.Builder
	for _, r := range n.Routes {
		fmt.Fprintf(&b, "route replace %s via %s dev %s\n", r.Dst, r.Via, r.Dev)
	}
	dir := filepath.Join(l.Dir, "routes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, n.Name+".ip")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	if out, err := l.NS.IP(n.Name, "-force", "-batch", path); err != nil {
		if !l.anyCut() {
			return fmt.Errorf("routes of %s: %w: %s", n.Name, err, out)
		}
	}
	return nil
}

// anyCut reports whether a link is cut (routes over it cannot be set).
func (l *Lab) anyCut() bool {
	st, err := readState(l.Dir)
	return err == nil && len(st.Cuts) > 0
}

// startRelay writes the relay's config and starts it in the relay
// namespace; it returns once the relay has attached every TAP.
func (l *Lab) startRelay(ctx context.Context, detach bool) error {
	if !l.Plan.Relayed() {
		return nil
	}
	cfg := relayConfig{Seed: l.Seed}
	for _, k := range l.Plan.Links {
		if !k.Relayed {
			continue
		}
		cfg.Links = append(cfg.Links, relayLink{
			Name: k.Name(), Index: k.Index, Impair: k.Impair,
			A: relayEnd{NetNS: l.NS.Path(k.A.Node.Name), Ifname: k.A.Name},
			B: relayEnd{NetNS: l.NS.Path(k.B.Node.Name), Ifname: k.B.Name},
		})
	}
	cfgPath := filepath.Join(l.Dir, "relay.json")
	if err := writeJSONAtomic(cfgPath, cfg); err != nil {
		return err
	}
	ready := filepath.Join(l.Dir, "relay.ready")
	os.Remove(ready)
	argv := []string{l.l2wg, "lab", "relay", "-config", cfgPath, "-stats", filepath.Join(l.Dir, "relay.stats.json"), "-ready", ready}
	logPath := filepath.Join(l.Dir, "relay.log")
	p, err := l.NS.StartWith(relayNS, netns.StartOptions{LogPath: logPath, Detach: detach}, argv...)
	if err != nil {
		return err
	}
	p.StopTimeout = 5 * time.Second
	l.mu.Lock()
	l.procs["relay"] = p
	l.mu.Unlock()
	if err := updateState(l.Dir, func(st *state) error { st.Procs["relay"] = record(p.PID, argv, logPath); return nil }); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			l.logf("relay running (pid %d): %d impaired links, seed %d", p.PID, len(cfg.Links), l.Seed)
			return nil
		}
		if done, _ := p.Exited(); done {
			return fmt.Errorf("relay exited: %s", tail(p.Log(), 10))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("relay not ready after 15s: %s", tail(p.Log(), 10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startAllSites starts every site's l2wg, one after the other with a gap
// longer than the underlay delay between any two peers: an l2wg initiates a
// WireGuard handshake with every peer as it starts, and two initiations
// that cross on the wire each overwrite the other side's handshake state,
// so neither completes until a retry 5 s later happens not to cross.
func (l *Lab) startAllSites(ctx context.Context, detach bool) error {
	gap := 2*l.Plan.MaxPeeringDelay() + 50*time.Millisecond
	for i, n := range l.Plan.Sites() {
		if i > 0 {
			time.Sleep(gap)
		}
		if err := l.startSite(ctx, n.Name, detach); err != nil {
			return err
		}
	}
	l.logf("started %d l2wg", len(l.Plan.Sites()))
	return nil
}

// startSite starts site's l2wg and waits until its TAP is up in br0.
func (l *Lab) startSite(ctx context.Context, site string, detach bool) error {
	bin := l.l2wg
	if b := l.siteL2WG[site]; b != "" {
		bin = b
	}
	argv := []string{bin, "up", "-c", l.ConfPath(site)}
	p, err := l.NS.StartWith(site, netns.StartOptions{LogPath: l.LogPath(site), Detach: detach}, argv...)
	if err != nil {
		return err
	}
	p.StopTimeout = 5 * time.Second
	key := "l2wg " + site
	l.mu.Lock()
	l.procs[key] = p
	l.mu.Unlock()
	if err := updateState(l.Dir, func(st *state) error {
		st.Procs[key] = record(p.PID, argv, l.LogPath(site))
		st.Stopped = remove(st.Stopped, site)
		return nil
	}); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		link, err := l.NS.LinkInfo(site, tapName)
		if err == nil && link.Master == vmBridge && link.IsUp() {
			return nil
		}
		if done, _ := p.Exited(); done {
			return fmt.Errorf("l2wg on %s exited: %s", site, tail(readFile(l.LogPath(site)), 15))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("l2wg on %s: TAP %s not up in %s after 15s: %s", site, tapName, vmBridge, tail(readFile(l.LogPath(site)), 15))
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// stopSite stops site's l2wg with SIGTERM.
func (l *Lab) stopSite(site string) error {
	key := "l2wg " + site
	l.mu.Lock()
	p := l.procs[key]
	delete(l.procs, key)
	l.mu.Unlock()
	var rec *procRecord
	if err := updateState(l.Dir, func(st *state) error {
		rec = st.Procs[key]
		delete(st.Procs, key)
		if !contains(st.Stopped, site) {
			st.Stopped = append(st.Stopped, site)
		}
		return nil
	}); err != nil {
		return err
	}
	if p != nil {
		if err := p.Stop(); err != nil {
			return fmt.Errorf("stop l2wg on %s: %w", site, err)
		}
		return nil
	}
	if rec == nil || stopRecorded(l.Dir, []*procRecord{rec}, 5*time.Second) == 0 {
		return fmt.Errorf("stop %s: its l2wg is not running", site)
	}
	return nil
}
